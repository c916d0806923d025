//! Tool arguments: the original system's parameter names, their JSON Schemas, and their
//! mapping onto the service layer's input types.
//!
//! Parsing is lenient where an assistant is likely to stumble and strict where it matters:
//!
//! - every argument struct is read through [`Input`], so a malformed argument (a bad UUID, an
//!   unknown priority, a number where a string belongs) becomes a `VALIDATION_ERROR` tool
//!   result naming the argument, which the model can read and correct, instead of a JSON-RPC
//!   protocol error;
//! - arguments must be a JSON object (MCP's `arguments` is one, and rmcp refuses any other
//!   shape at the protocol level; [`Input`] checks again so no array is ever read into a struct
//!   by position);
//! - unknown arguments are ignored — in particular `user_id`, which the original tools took
//!   first and existing prompts may still send: the user always comes from the token. REST,
//!   whose callers are programs that can be fixed, refuses unknown fields instead; a model's
//!   stray argument should not fail a call whose known arguments are right;
//! - `null` means "not given" everywhere (models often send `null` for every optional
//!   parameter), so in `update_*` an empty string `""` is what removes a clearable value;
//! - enum values (`priority`, `status`, `sort_by`, `order`) are case-insensitive;
//! - timestamps are ISO-8601 / RFC 3339 *with* a UTC offset; a timestamp without one is
//!   rejected with a hint rather than silently read as UTC.
//!
//! Nothing here applies a business rule: lengths, colours, RRULEs, limits and ownership are
//! the service layer's, shared with REST.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use super::ids::IdArg;
use crate::domain::{
    CategoryPatch, DEFAULT_LIMIT, NewCategory, NewTag, NewTask, Priority, ReminderSpec,
    SearchQuery, SortBy, SortOrder, StatusFilter, TagPatch, TaskFilter, TaskPatch,
};

/// A malformed or inconsistent tool argument, reported as `VALIDATION_ERROR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct InvalidArgument {
    /// The argument at fault (a path such as `tag_ids[2]`), when known.
    pub(super) field: Option<String>,
    /// What is wrong, in words a model can act on.
    pub(super) message: String,
}

impl InvalidArgument {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
}

/// Tool arguments of type `T` whose deserialisation never fails at the protocol level: a
/// failure is kept and reported by the tool as a `VALIDATION_ERROR` result. The JSON Schema
/// is `T`'s.
#[derive(Debug)]
pub(super) struct Input<T>(Result<T, InvalidArgument>);

impl<T> Input<T> {
    /// The parsed arguments, or what was wrong with them.
    pub(super) fn parse(self) -> Result<T, InvalidArgument> {
        self.0
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Input<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        if !value.is_object() {
            return Ok(Self(Err(InvalidArgument {
                field: None,
                message: "invalid arguments: the arguments must be a JSON object of named \
                          arguments"
                    .to_owned(),
            })));
        }
        Ok(Self(serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            if path == "." {
                InvalidArgument {
                    field: None,
                    message: format!("invalid arguments: {message}"),
                }
            } else {
                InvalidArgument {
                    message: format!("invalid argument `{path}`: {message}"),
                    field: Some(path),
                }
            }
        })))
    }
}

impl<T: JsonSchema> JsonSchema for Input<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }

    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// Field deserialisers for the leniency rules in the module docs.
mod lenient {
    use super::*;

    const TIMESTAMP_HINT: &str = "expected an ISO-8601 timestamp with a UTC offset, e.g. \
        2025-06-01T09:00:00Z or 2025-06-01T09:00:00+02:00 (convert the user's local time and \
        include the offset)";

    fn timestamp(text: &str) -> Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(text.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("`{text}` is not a valid timestamp ({e}); {TIMESTAMP_HINT}"))
    }

    /// `null`, absent or blank → `None`; otherwise a timestamp.
    pub(super) fn optional_timestamp<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) if !text.trim().is_empty() => {
                timestamp(&text).map(Some).map_err(D::Error::custom)
            }
            _ => Ok(None),
        }
    }

    /// A clearable value: `null`/absent → unchanged, `""` → remove, else `parse`.
    fn clearable<'de, D: Deserializer<'de>, T>(
        deserializer: D,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<Option<T>>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(text) if text.trim().is_empty() => Ok(Some(None)),
            Some(text) => parse(&text)
                .map(|v| Some(Some(v)))
                .map_err(D::Error::custom),
        }
    }

    /// A clearable timestamp (see [`clearable`]).
    pub(super) fn clearable_timestamp<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
        clearable(deserializer, timestamp)
    }

    /// A clearable id: `null`/absent → unchanged, `""` → remove, else a UUID or an original
    /// integer id (a JSON number, which [`clearable`] does not read).
    pub(super) fn clearable_id<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<IdArg>>, D::Error> {
        match Option::<serde_json::Value>::deserialize(deserializer)? {
            None => Ok(None),
            Some(serde_json::Value::String(text)) if text.trim().is_empty() => Ok(Some(None)),
            Some(value) => IdArg::from_value(&value)
                .map(|id| Some(Some(id)))
                .map_err(D::Error::custom),
        }
    }

    /// A clearable text (see [`clearable`]); the text is passed on as written.
    pub(super) fn clearable_text<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        clearable(deserializer, |text| Ok(text.to_owned()))
    }

    /// An optional enum value, matched case-insensitively; blank → `None`.
    pub(super) fn optional_enum<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) if !text.trim().is_empty() => {
                let value = serde_json::Value::String(text.trim().to_ascii_lowercase());
                serde_json::from_value(value)
                    .map(Some)
                    .map_err(D::Error::custom)
            }
            _ => Ok(None),
        }
    }

    /// An optional list of ids; `null` → empty.
    pub(super) fn ids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IdArg>, D::Error> {
        Ok(Option::<Vec<IdArg>>::deserialize(deserializer)?.unwrap_or_default())
    }
}

/// The sort keys of `list_tasks`, with the original system's names.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum SortKey {
    /// Creation time, newest first.
    #[serde(alias = "created")]
    CreatedAt,
    /// Due time, soonest first; tasks without a due date come last.
    #[serde(alias = "due", alias = "due_at")]
    DueDate,
    /// Priority, most urgent first.
    Priority,
}

impl From<SortKey> for SortBy {
    fn from(key: SortKey) -> Self {
        match key {
            SortKey::CreatedAt => Self::Created,
            SortKey::DueDate => Self::Due,
            SortKey::Priority => Self::Priority,
        }
    }
}

/// Arguments of `add_task`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct AddTaskArgs {
    /// Short title, 1-200 characters, one line. Required.
    title: String,
    /// Longer free-text notes (up to 10000 characters). Default empty.
    #[serde(default)]
    description: Option<String>,
    /// "low", "medium" (default), "high" or "urgent".
    #[serde(default, deserialize_with = "lenient::optional_enum")]
    priority: Option<Priority>,
    /// Id of one of the user's categories (from list_categories / create_category, or the
    /// original system's integer id).
    #[serde(default)]
    pub(super) category_id: Option<IdArg>,
    /// Ids of the user's tags (from list_tags / create_tag, or the original system's integer
    /// ids), at most 10.
    #[serde(default, deserialize_with = "lenient::ids")]
    pub(super) tag_ids: Vec<IdArg>,
    /// When the task is due: ISO-8601 timestamp with UTC offset, e.g.
    /// "2025-06-01T17:00:00+02:00", between the years 1970 and 9999. Required for a recurring
    /// task (it is the first occurrence).
    #[serde(default, deserialize_with = "lenient::optional_timestamp")]
    due_date: Option<DateTime<Utc>>,
    /// RFC 5545 RRULE making the task repeat, e.g. "FREQ=WEEKLY;BYDAY=MO,FR" (see the tool
    /// description for phrase-to-rule examples).
    #[serde(default)]
    recurrence_rule: Option<String>,
    /// When to remind the user: ISO-8601 timestamp with UTC offset, in the future and not
    /// after due_date. (Relative reminders: use set_reminder after creating the task.)
    #[serde(default, deserialize_with = "lenient::optional_timestamp")]
    remind_at: Option<DateTime<Utc>>,
}

impl AddTaskArgs {
    /// The new task, with the category and tags resolved to ours.
    pub(super) fn into_new_task(self, category_id: Option<Uuid>, tag_ids: Vec<Uuid>) -> NewTask {
        NewTask {
            title: self.title,
            description: self.description,
            priority: self.priority,
            category_id,
            tag_ids,
            due_at: self.due_date,
            remind_at: self.remind_at,
            recurrence_rule: self.recurrence_rule,
        }
    }
}

/// Arguments of `list_tasks`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub(super) struct ListTasksArgs {
    /// "all" (default), "pending" (not completed) or "completed".
    #[serde(default, deserialize_with = "lenient::optional_enum")]
    status: Option<StatusFilter>,
    /// Only tasks of this priority: "low", "medium", "high" or "urgent".
    #[serde(default, deserialize_with = "lenient::optional_enum")]
    priority: Option<Priority>,
    /// Only tasks in this category.
    #[serde(default)]
    pub(super) category_id: Option<IdArg>,
    /// Only tasks carrying at least one of these tags.
    #[serde(default, deserialize_with = "lenient::ids")]
    pub(super) tag_ids: Vec<IdArg>,
    /// Only tasks due strictly before this time (ISO-8601 with UTC offset).
    #[serde(default, deserialize_with = "lenient::optional_timestamp")]
    due_before: Option<DateTime<Utc>>,
    /// Only tasks due strictly after this time (ISO-8601 with UTC offset).
    #[serde(default, deserialize_with = "lenient::optional_timestamp")]
    due_after: Option<DateTime<Utc>>,
    /// "created_at" (default, newest first), "due_date" (soonest first, undated last) or
    /// "priority" (urgent first).
    #[serde(default, deserialize_with = "lenient::optional_enum")]
    sort_by: Option<SortKey>,
    /// "asc" or "desc" to override the sort key's natural order.
    #[serde(default, deserialize_with = "lenient::optional_enum")]
    order: Option<SortOrder>,
    /// Page size: default 50, at most 200.
    #[serde(default)]
    limit: Option<u32>,
    /// Number of tasks to skip (for the next page: offset + limit). Default 0.
    #[serde(default)]
    offset: Option<u32>,
}

impl ListTasksArgs {
    /// The filter, with the category and tags resolved to ours.
    pub(super) fn into_filter(self, category_id: Option<Uuid>, tag_ids: Vec<Uuid>) -> TaskFilter {
        let a = self;
        TaskFilter {
            status: a.status.unwrap_or_default(),
            priority: a.priority,
            category_id,
            tag_ids,
            due_before: a.due_before,
            due_after: a.due_after,
            sort: a.sort_by.map(SortBy::from).unwrap_or_default(),
            order: a.order,
            limit: a.limit.unwrap_or(DEFAULT_LIMIT),
            offset: a.offset.unwrap_or(0),
        }
    }
}

/// Arguments of the tools that take only a task: `get_task`, `delete_task`, `complete_task`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct TaskIdArgs {
    /// The task's id (from add_task, list_tasks or search_tasks, or the original system's
    /// integer id).
    pub(super) task_id: IdArg,
}

/// Arguments of `update_task`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct UpdateTaskArgs {
    /// The task's id.
    pub(super) task_id: IdArg,
    /// New title, 1-200 characters.
    #[serde(default)]
    title: Option<String>,
    /// New description.
    #[serde(default)]
    description: Option<String>,
    /// true marks the task done, false reopens it.
    #[serde(default)]
    completed: Option<bool>,
    /// New priority: "low", "medium", "high" or "urgent".
    #[serde(default, deserialize_with = "lenient::optional_enum")]
    priority: Option<Priority>,
    /// New category id, or "" to remove the task from its category.
    #[serde(default, deserialize_with = "lenient::clearable_id")]
    #[schemars(with = "Option<IdArg>")]
    pub(super) category_id: Option<Option<IdArg>>,
    /// New due time (ISO-8601 with UTC offset), or "" to remove the due date (a recurring task
    /// keeps needing one: pass recurrence_rule="" too).
    #[serde(default, deserialize_with = "lenient::clearable_timestamp")]
    #[schemars(with = "Option<String>")]
    due_date: Option<Option<DateTime<Utc>>>,
    /// New RRULE (the task must have a due date, or get one as due_date in the same call), or ""
    /// to stop the task repeating.
    #[serde(default, deserialize_with = "lenient::clearable_text")]
    #[schemars(with = "Option<String>")]
    recurrence_rule: Option<Option<String>>,
    /// New reminder time (ISO-8601 with UTC offset, in the future), or "" to cancel the
    /// reminder. For "N minutes before due" use set_reminder.
    #[serde(default, deserialize_with = "lenient::clearable_timestamp")]
    #[schemars(with = "Option<String>")]
    remind_at: Option<Option<DateTime<Utc>>>,
}

impl UpdateTaskArgs {
    /// The patch to apply to the task, with the category resolved to ours.
    pub(super) fn into_patch(self, category_id: Option<Option<Uuid>>) -> TaskPatch {
        TaskPatch {
            title: self.title,
            description: self.description,
            completed: self.completed,
            priority: self.priority,
            category_id,
            due_at: self.due_date,
            remind_at: self.remind_at,
            recurrence_rule: self.recurrence_rule,
        }
    }
}

/// Arguments of `search_tasks`: the original contract's `query`, `limit`, `offset` and its
/// structured filters `priority`, `category_id` and `tag_ids` (read as in `list_tasks`).
#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct SearchTasksArgs {
    /// Words to look for in titles and descriptions (full-text, ranked by relevance).
    query: String,
    /// Only tasks of this priority: "low", "medium", "high" or "urgent".
    #[serde(default, deserialize_with = "lenient::optional_enum")]
    priority: Option<Priority>,
    /// Only tasks in this category (an id from list_categories).
    #[serde(default)]
    pub(super) category_id: Option<IdArg>,
    /// Only tasks carrying at least one of these tags (ids from list_tags).
    #[serde(default, deserialize_with = "lenient::ids")]
    pub(super) tag_ids: Vec<IdArg>,
    /// Most results to return: default 50, at most 200.
    #[serde(default)]
    limit: Option<u32>,
    /// Number of results to skip (for the next page: offset + limit). Default 0.
    #[serde(default)]
    offset: Option<u32>,
}

impl SearchTasksArgs {
    /// The search, with the category and tags resolved to ours.
    pub(super) fn into_query(self, category_id: Option<Uuid>, tag_ids: Vec<Uuid>) -> SearchQuery {
        let a = self;
        SearchQuery {
            query: a.query,
            priority: a.priority,
            category_id,
            tag_ids,
            limit: a.limit.unwrap_or(DEFAULT_LIMIT),
            offset: a.offset.unwrap_or(0),
        }
    }
}

/// Arguments of `set_reminder`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct SetReminderArgs {
    /// The task's id.
    pub(super) task_id: IdArg,
    /// Remind this many minutes before the task's due date (the task must have one): 15,
    /// 60 = one hour, 1440 = one day, 10080 = one week. Give this or remind_at, not both.
    #[serde(default)]
    remind_before_minutes: Option<u32>,
    /// Remind at this time: ISO-8601 with UTC offset, in the future and not after the due
    /// date. Give this or remind_before_minutes, not both.
    #[serde(default, deserialize_with = "lenient::optional_timestamp")]
    remind_at: Option<DateTime<Utc>>,
}

impl SetReminderArgs {
    /// The task id and the reminder, if exactly one way of giving it was used.
    pub(super) fn into_spec(self) -> Result<(IdArg, ReminderSpec), InvalidArgument> {
        let spec = match (self.remind_before_minutes, self.remind_at) {
            (Some(minutes), None) => ReminderSpec::BeforeDue { minutes },
            (None, Some(at)) => ReminderSpec::At(at),
            (Some(_), Some(_)) => {
                return Err(InvalidArgument::new(
                    "remind_before_minutes",
                    "give exactly one of remind_before_minutes or remind_at, not both",
                ));
            }
            (None, None) => {
                return Err(InvalidArgument::new(
                    "remind_before_minutes",
                    "give exactly one of remind_before_minutes (e.g. 1440 for one day before \
                     the due date) or remind_at (an ISO-8601 time)",
                ));
            }
        };
        Ok((self.task_id, spec))
    }
}

/// Arguments of `add_tag_to_task` and `remove_tag_from_task`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct TaskTagArgs {
    /// The task's id.
    pub(super) task_id: IdArg,
    /// The tag's id (from list_tags or create_tag).
    pub(super) tag_id: IdArg,
}

/// Arguments of `create_category`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct CreateCategoryArgs {
    /// Category name, 1-50 characters, unique per user (case-insensitive).
    name: String,
    /// Display colour "#RRGGBB", e.g. "#FF5733". Optional.
    #[serde(default)]
    color: Option<String>,
}

impl From<CreateCategoryArgs> for NewCategory {
    fn from(a: CreateCategoryArgs) -> Self {
        Self {
            name: a.name,
            color: a.color.filter(|c| !c.trim().is_empty()),
        }
    }
}

/// Arguments of `update_category`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct UpdateCategoryArgs {
    /// The category's id (from list_categories).
    pub(super) category_id: IdArg,
    /// New name, 1-50 characters, unique per user.
    #[serde(default)]
    name: Option<String>,
    /// New colour "#RRGGBB", or "" to remove it.
    #[serde(default, deserialize_with = "lenient::clearable_text")]
    #[schemars(with = "Option<String>")]
    color: Option<Option<String>>,
}

impl UpdateCategoryArgs {
    /// The category id and the patch to apply to it.
    pub(super) fn into_patch(self) -> (IdArg, CategoryPatch) {
        (
            self.category_id,
            CategoryPatch {
                name: self.name,
                color: self.color,
            },
        )
    }
}

/// Arguments of `delete_category`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct CategoryIdArgs {
    /// The category's id (from list_categories).
    pub(super) category_id: IdArg,
}

/// Arguments of `create_tag`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct CreateTagArgs {
    /// Tag name, 1-30 characters, unique per user (case-insensitive).
    name: String,
    /// Display colour "#RRGGBB". Optional.
    #[serde(default)]
    color: Option<String>,
}

impl From<CreateTagArgs> for NewTag {
    fn from(a: CreateTagArgs) -> Self {
        Self {
            name: a.name,
            color: a.color.filter(|c| !c.trim().is_empty()),
        }
    }
}

/// Arguments of `update_tag`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct UpdateTagArgs {
    /// The tag's id (from list_tags).
    pub(super) tag_id: IdArg,
    /// New name, 1-30 characters, unique per user.
    #[serde(default)]
    name: Option<String>,
    /// New colour "#RRGGBB", or "" to remove it.
    #[serde(default, deserialize_with = "lenient::clearable_text")]
    #[schemars(with = "Option<String>")]
    color: Option<Option<String>>,
}

impl UpdateTagArgs {
    /// The tag id and the patch to apply to it.
    pub(super) fn into_patch(self) -> (IdArg, TagPatch) {
        (
            self.tag_id,
            TagPatch {
                name: self.name,
                color: self.color,
            },
        )
    }
}

/// Arguments of `delete_tag`.
#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct TagIdArgs {
    /// The tag's id (from list_tags).
    pub(super) tag_id: IdArg,
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn parse<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, InvalidArgument> {
        serde_json::from_value::<Input<T>>(value).unwrap().parse()
    }

    #[test]
    fn add_task_maps_original_names_and_ignores_user_id() {
        let args: AddTaskArgs = parse(json!({
            "user_id": "someone-else",
            "title": "Pay rent",
            "priority": "HIGH",
            "due_date": "2030-01-31T09:00:00+01:00",
            "tag_ids": null,
            "category_id": null,
            "recurrence_rule": "FREQ=MONTHLY;BYMONTHDAY=-1",
        }))
        .unwrap();
        assert_eq!((args.category_id, args.tag_ids.len()), (None, 0));
        let new = args.into_new_task(None, Vec::new());
        assert_eq!(new.title, "Pay rent");
        assert_eq!(new.priority, Some(Priority::High));
        assert_eq!(
            new.due_at.unwrap().to_rfc3339(),
            "2030-01-31T08:00:00+00:00"
        );
        assert!(new.tag_ids.is_empty());
        assert_eq!(new.category_id, None);
    }

    #[test]
    fn bad_arguments_name_the_field() {
        for bad in [json!(-42), json!(4.2), json!("42x"), json!(false)] {
            let err = parse::<TaskIdArgs>(json!({ "task_id": bad })).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("task_id"), "{bad}");
            assert!(err.message.contains("not an id"), "{}", err.message);
        }
        let err = parse::<AddTaskArgs>(json!({"title": "x", "due_date": "2030-01-31T09:00"}))
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("due_date"));
        assert!(err.message.contains("UTC offset"), "{}", err.message);
        let err = parse::<AddTaskArgs>(json!({"title": "x", "priority": "asap"})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("priority"));
        let err = parse::<AddTaskArgs>(json!({"description": "no title"})).unwrap_err();
        assert!(err.message.contains("title"), "{}", err.message);
        let err = parse::<AddTaskArgs>(json!({"title": "x", "tag_ids": ["nope"]})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("tag_ids[0]"));
    }

    #[test]
    fn arguments_must_be_an_object() {
        for not_an_object in [
            json!(["x"]),
            json!(["t", "d", "urgent"]),
            json!("x"),
            json!(null),
        ] {
            let err = parse::<AddTaskArgs>(not_an_object.clone()).unwrap_err();
            assert_eq!(err.field, None, "{not_an_object}");
            assert!(err.message.contains("JSON object"), "{}", err.message);
        }
        // Unknown arguments stay ignored (see the module docs).
        let args: TaskIdArgs =
            parse(json!({"task_id": Uuid::nil(), "user_id": "x", "extra": 1})).unwrap();
        assert_eq!(args.task_id, IdArg::Ours(Uuid::nil()));
    }

    #[test]
    fn ids_may_be_the_original_integers() {
        let args: TaskTagArgs = parse(json!({"task_id": 17, "tag_id": "4"})).unwrap();
        assert_eq!(
            (args.task_id, args.tag_id),
            (IdArg::Legacy(17), IdArg::Legacy(4))
        );
        let args: AddTaskArgs =
            parse(json!({"title": "x", "category_id": 3, "tag_ids": [1, Uuid::nil()]})).unwrap();
        assert_eq!(args.category_id, Some(IdArg::Legacy(3)));
        assert_eq!(args.tag_ids, [IdArg::Legacy(1), IdArg::Ours(Uuid::nil())]);
        let args: UpdateTaskArgs = parse(json!({"task_id": 9, "category_id": 3})).unwrap();
        assert_eq!(args.category_id, Some(Some(IdArg::Legacy(3))));
    }

    #[test]
    fn update_null_keeps_and_empty_string_clears() {
        let id = Uuid::nil();
        let args: UpdateTaskArgs = parse(json!({
            "task_id": id,
            "title": null,
            "due_date": null,
            "category_id": "",
            "recurrence_rule": "",
            "remind_at": "2030-01-01T00:00:00Z",
        }))
        .unwrap();
        assert_eq!(args.task_id, IdArg::Ours(id));
        assert_eq!(args.category_id, Some(None));
        let patch = args.into_patch(Some(None));
        assert_eq!(patch.title, None);
        assert_eq!(patch.due_at, None);
        assert_eq!(patch.category_id, Some(None));
        assert_eq!(patch.recurrence_rule, Some(None));
        assert!(matches!(patch.remind_at, Some(Some(_))));
    }

    #[test]
    fn list_filter_defaults_and_original_sort_names() {
        let filter = parse::<ListTasksArgs>(json!({}))
            .unwrap()
            .into_filter(None, Vec::new());
        assert_eq!(filter, TaskFilter::default());
        let filter = parse::<ListTasksArgs>(json!({"sort_by": "due_date", "status": "Pending"}))
            .unwrap()
            .into_filter(None, Vec::new());
        assert_eq!(filter.sort, SortBy::Due);
        assert_eq!(filter.status, StatusFilter::Pending);
    }

    #[test]
    fn search_reads_the_original_filters() {
        let tag = Uuid::now_v7();
        let category = Uuid::now_v7();
        let args = parse::<SearchTasksArgs>(json!({
            "query": "dentist",
            "priority": "Urgent",
            "category_id": category,
            "tag_ids": [tag],
            "offset": 5,
            "user_id": 7,
        }))
        .unwrap();
        assert_eq!(args.category_id, Some(IdArg::Ours(category)));
        assert_eq!(args.tag_ids, [IdArg::Ours(tag)]);
        let search = args.into_query(Some(category), vec![tag]);
        assert_eq!(
            search,
            SearchQuery {
                priority: Some(Priority::Urgent),
                category_id: Some(category),
                tag_ids: vec![tag],
                offset: 5,
                ..SearchQuery::words("dentist")
            }
        );
        // Nulls are "not given", as everywhere.
        let plain = parse::<SearchTasksArgs>(json!({
            "query": "x", "priority": null, "category_id": null, "tag_ids": null,
            "limit": null, "offset": null,
        }))
        .unwrap();
        assert_eq!((plain.category_id, plain.tag_ids.len()), (None, 0));
        let plain = plain.into_query(None, Vec::new());
        assert_eq!(plain, SearchQuery::words("x"));
        // A bad value names its argument.
        for (args, field) in [
            (json!({"query": "x", "priority": "asap"}), "priority"),
            (json!({"query": "x", "category_id": 3.5}), "category_id"),
            (json!({"query": "x", "tag_ids": ["work"]}), "tag_ids[0]"),
            (json!({"query": "x", "tag_ids": "work"}), "tag_ids"),
            (json!({"query": "x", "offset": -1}), "offset"),
        ] {
            let err = parse::<SearchTasksArgs>(args.clone()).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{args}: {}", err.message);
        }
    }

    #[test]
    fn set_reminder_needs_exactly_one_way() {
        let id = Uuid::nil();
        let both: SetReminderArgs = parse(json!({
            "task_id": id, "remind_before_minutes": 10, "remind_at": "2030-01-01T00:00:00Z"
        }))
        .unwrap();
        assert!(both.into_spec().is_err());
        let neither: SetReminderArgs =
            parse(json!({"task_id": id, "remind_before_minutes": null})).unwrap();
        assert!(neither.into_spec().is_err());
        let before: SetReminderArgs =
            parse(json!({"task_id": id, "remind_before_minutes": 1440})).unwrap();
        assert_eq!(
            before.into_spec().unwrap().1,
            ReminderSpec::BeforeDue { minutes: 1440 }
        );
    }
}
