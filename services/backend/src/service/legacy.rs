//! The original system's integer ids, for the MCP tools: an assistant conversation from before
//! the switch may still hold them. `backend import-legacy` records which of our rows each one
//! became; these calls look them up for the caller only.

use uuid::Uuid;

use super::{SUGGESTIONS, TaskService};
use crate::domain::{AuthUser, LegacyKind};
use crate::error::ServiceError;
use crate::store::legacy;
use crate::store::tasks as task_store;

impl TaskService {
    /// The caller's row of `kind` that the original id `legacy_id` was imported as.
    ///
    /// `LegacyNotFound` when there is none: never imported, imported for another user (the
    /// same answer, so ids reveal nothing about other users), or deleted since. For a task it
    /// carries the caller's recent pending tasks as suggestions, like `TaskNotFound`.
    pub async fn resolve_legacy_id(
        &self,
        user: &AuthUser,
        kind: LegacyKind,
        legacy_id: i64,
    ) -> Result<Uuid, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        let found = legacy::resolve(&mut conn, kind, &user.id, &[legacy_id]).await?;
        if let Some(&(_, id)) = found.first() {
            return Ok(id);
        }
        let suggestions = match kind {
            LegacyKind::Task => {
                task_store::recent_pending(&mut conn, &user.id, SUGGESTIONS).await?
            }
            LegacyKind::Category | LegacyKind::Tag => Vec::new(),
        };
        Err(ServiceError::LegacyNotFound {
            kind,
            legacy_id,
            suggestions,
        })
    }

    /// The caller's rows of `kind` for original ids used as a *filter* (`category_id`,
    /// `tag_ids` of list and search), in the order given.
    ///
    /// An id that names none of the caller's rows becomes the nil UUID, which no row has (ours
    /// are v7): a filter on it matches nothing, exactly as a filter on another user's UUID does.
    /// Dropping it instead would widen an any-of tag filter, or remove the filter altogether.
    pub async fn resolve_legacy_filter_ids(
        &self,
        user: &AuthUser,
        kind: LegacyKind,
        legacy_ids: &[i64],
    ) -> Result<Vec<Uuid>, ServiceError> {
        if legacy_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await?;
        let found = legacy::resolve(&mut conn, kind, &user.id, legacy_ids).await?;
        Ok(legacy_ids
            .iter()
            .map(|n| {
                found
                    .iter()
                    .find_map(|&(legacy_id, id)| (legacy_id == *n).then_some(id))
                    .unwrap_or(Uuid::nil())
            })
            .collect())
    }
}
