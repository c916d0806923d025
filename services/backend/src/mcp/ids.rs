//! Ids in tool arguments: ours (UUIDs, as the tools return them) or the original system's
//! integers, which an assistant conversation from before the switch may still hold.
//!
//! An integer is looked up in the map `backend import-legacy` keeps, for the caller only: an
//! id of another user's row resolves to nothing and answers exactly like a missing one. Where
//! the id names the row to act on (`task_id`, `tag_id`, the `category_id` given to a task) a
//! miss is `TASK_NOT_FOUND` / `NOT_FOUND`; where it only narrows a list or a search it matches
//! nothing, as a UUID of another user's label does.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use uuid::Uuid;

use super::args::TaskTagArgs;
use crate::domain::{AuthUser, LegacyKind};
use crate::error::ServiceError;
use crate::service::TaskService;

/// A row id as a tool argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IdArg {
    /// One of our ids.
    Ours(Uuid),
    /// The original system's id of the same row: a positive integer, as a JSON number or a
    /// string of digits.
    Legacy(i64),
}

impl IdArg {
    /// Reads an id from text: a UUID, or the digits of an original id.
    fn from_text(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(id) = Uuid::parse_str(text) {
            return Ok(Self::Ours(id));
        }
        match text.parse::<i64>() {
            Ok(n) if n > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(Self::Legacy(n)),
            _ => Err(not_an_id(text)),
        }
    }

    /// Reads an id from a JSON value: a string (see [`IdArg::from_text`]) or a positive integer.
    pub(super) fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(text) => Self::from_text(text),
            Value::Number(n) => match n.as_i64() {
                Some(n) if n > 0 => Ok(Self::Legacy(n)),
                _ => Err(not_an_id(&n.to_string())),
            },
            other => Err(not_an_id(&other.to_string())),
        }
    }
}

fn not_an_id(text: &str) -> String {
    format!(
        "`{text}` is not an id (ids are the UUIDs the tools return, or the original system's \
         positive integer ids)"
    )
}

impl<'de> Deserialize<'de> for IdArg {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value(&value).map_err(D::Error::custom)
    }
}

impl JsonSchema for IdArg {
    fn schema_name() -> Cow<'static, str> {
        "Id".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                {"type": "string", "format": "uuid"},
                {"type": "integer", "minimum": 1},
            ]
        })
    }
}

/// Resolves [`IdArg`]s for one caller.
pub(super) struct Ids<'a> {
    pub(super) service: &'a TaskService,
    pub(super) user: &'a AuthUser,
}

impl Ids<'_> {
    /// The row of `kind` to act on; a miss is `TASK_NOT_FOUND` / `NOT_FOUND`.
    async fn one(&self, kind: LegacyKind, id: IdArg) -> Result<Uuid, ServiceError> {
        match id {
            IdArg::Ours(id) => Ok(id),
            IdArg::Legacy(n) => self.service.resolve_legacy_id(self.user, kind, n).await,
        }
    }

    /// The task to act on.
    pub(super) async fn task(&self, id: IdArg) -> Result<Uuid, ServiceError> {
        self.one(LegacyKind::Task, id).await
    }

    /// The category to act on (or to put a task in).
    pub(super) async fn category(&self, id: IdArg) -> Result<Uuid, ServiceError> {
        self.one(LegacyKind::Category, id).await
    }

    /// The tag to act on.
    pub(super) async fn tag(&self, id: IdArg) -> Result<Uuid, ServiceError> {
        self.one(LegacyKind::Tag, id).await
    }

    /// The task and the tag of `add_tag_to_task` / `remove_tag_from_task`.
    pub(super) async fn task_and_tag(
        &self,
        args: TaskTagArgs,
    ) -> Result<(Uuid, Uuid), ServiceError> {
        Ok((self.task(args.task_id).await?, self.tag(args.tag_id).await?))
    }

    /// An optional category to put a task in.
    pub(super) async fn optional_category(
        &self,
        id: Option<IdArg>,
    ) -> Result<Option<Uuid>, ServiceError> {
        match id {
            Some(id) => self.category(id).await.map(Some),
            None => Ok(None),
        }
    }

    /// Tags to put on a task: each must be the caller's.
    pub(super) async fn tags(&self, ids: &[IdArg]) -> Result<Vec<Uuid>, ServiceError> {
        let resolved = self.filter(LegacyKind::Tag, ids).await?;
        // Only an original id can come back nil (see `resolve_legacy_filter_ids`).
        match ids.iter().zip(&resolved).find(|(_, id)| id.is_nil()) {
            Some((&IdArg::Legacy(legacy_id), _)) => Err(ServiceError::LegacyNotFound {
                kind: LegacyKind::Tag,
                legacy_id,
                suggestions: Vec::new(),
            }),
            _ => Ok(resolved),
        }
    }

    /// A category filter of a list or search.
    pub(super) async fn category_filter(
        &self,
        id: Option<IdArg>,
    ) -> Result<Option<Uuid>, ServiceError> {
        match id {
            Some(id) => Ok(self.filter(LegacyKind::Category, &[id]).await?.pop()),
            None => Ok(None),
        }
    }

    /// A tag filter of a list or search.
    pub(super) async fn tag_filter(&self, ids: &[IdArg]) -> Result<Vec<Uuid>, ServiceError> {
        self.filter(LegacyKind::Tag, ids).await
    }

    /// `ids` in order, original ids resolved in one query (nil where they name nothing).
    async fn filter(&self, kind: LegacyKind, ids: &[IdArg]) -> Result<Vec<Uuid>, ServiceError> {
        let legacy: Vec<i64> = ids
            .iter()
            .filter_map(|id| match id {
                IdArg::Legacy(n) => Some(*n),
                IdArg::Ours(_) => None,
            })
            .collect();
        let mut resolved = self
            .service
            .resolve_legacy_filter_ids(self.user, kind, &legacy)
            .await?
            .into_iter();
        Ok(ids
            .iter()
            .map(|id| match id {
                IdArg::Ours(id) => *id,
                IdArg::Legacy(_) => resolved.next().unwrap_or(Uuid::nil()),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn reads_uuids_and_original_integers() {
        let id = Uuid::now_v7();
        assert_eq!(IdArg::from_value(&json!(id)), Ok(IdArg::Ours(id)));
        assert_eq!(IdArg::from_value(&json!(42)), Ok(IdArg::Legacy(42)));
        assert_eq!(IdArg::from_value(&json!(" 42 ")), Ok(IdArg::Legacy(42)));
        for bad in [
            json!(0),
            json!(-3),
            json!(4.5),
            json!("+42"),
            json!("-42"),
            json!("42abc"),
            json!(""),
            json!(true),
            json!(null),
            json!("99999999999999999999"),
        ] {
            let err = IdArg::from_value(&bad).unwrap_err();
            assert!(err.contains("not an id"), "{bad}: {err}");
        }
    }
}
