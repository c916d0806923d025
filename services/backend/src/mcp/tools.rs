//! The 18 tools of the original system, each a thin mapping onto one [`TaskService`] method.
//!
//! [`TaskService`]: crate::service::TaskService

use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::ErrorCode;
use rmcp::{ErrorData, tool, tool_router};
use serde_json::json;

use super::TodoMcp;
use super::args::{
    AddTaskArgs, CategoryIdArgs, CreateCategoryArgs, CreateTagArgs, Input, ListTasksArgs,
    SearchTasksArgs, SetReminderArgs, TagIdArgs, TaskIdArgs, TaskTagArgs, UpdateCategoryArgs,
    UpdateTagArgs, UpdateTaskArgs,
};
use super::descriptions as text;
use super::ids::Ids;
use super::reply::{Reply, ok};
use crate::domain::AuthUser;

/// The caller, as `require_user` authenticated them: read from the HTTP request parts that
/// the Streamable HTTP transport hands to every tool call. Never from a tool argument.
pub(super) struct Caller(AuthUser);

impl<S> FromContextPart<ToolCallContext<'_, S>> for Caller {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, ErrorData> {
        context
            .request_context()
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<AuthUser>())
            .cloned()
            .map(Self)
            .ok_or_else(|| {
                tracing::error!(
                    "MCP tool call without an authenticated user (auth layer missing?)"
                );
                ErrorData::new(
                    ErrorCode::INVALID_REQUEST,
                    "not authenticated: send Authorization: Bearer <token>",
                    None,
                )
            })
    }
}

impl TodoMcp {
    /// Resolves ids of tool arguments for `user`.
    fn ids<'a>(&'a self, user: &'a AuthUser) -> Ids<'a> {
        Ids {
            service: &self.service,
            user,
        }
    }
}

#[tool_router(router = tool_router, vis = "pub(super)")]
impl TodoMcp {
    #[tool(description = text::ADD_TASK)]
    async fn add_task(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<AddTaskArgs>>,
    ) -> Reply {
        let args = args.parse()?;
        let ids = self.ids(&user);
        let category_id = ids.optional_category(args.category_id).await?;
        let tag_ids = ids.tags(&args.tag_ids).await?;
        let new = args.into_new_task(category_id, tag_ids);
        ok(self.service.create_task(&user, new).await?)
    }

    #[tool(description = text::LIST_TASKS, annotations(read_only_hint = true))]
    async fn list_tasks(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<ListTasksArgs>>,
    ) -> Reply {
        let args = args.parse()?;
        let ids = self.ids(&user);
        let category_id = ids.category_filter(args.category_id).await?;
        let tag_ids = ids.tag_filter(&args.tag_ids).await?;
        let filter = args.into_filter(category_id, tag_ids);
        ok(self.service.list_tasks(&user, &filter).await?)
    }

    #[tool(description = text::GET_TASK, annotations(read_only_hint = true))]
    async fn get_task(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<TaskIdArgs>>,
    ) -> Reply {
        let id = self.ids(&user).task(args.parse()?.task_id).await?;
        ok(self.service.get_task(&user, id).await?)
    }

    #[tool(
        description = text::UPDATE_TASK,
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn update_task(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<UpdateTaskArgs>>,
    ) -> Reply {
        let args = args.parse()?;
        let ids = self.ids(&user);
        let id = ids.task(args.task_id).await?;
        let category_id = match args.category_id {
            Some(Some(category)) => Some(Some(ids.category(category).await?)),
            Some(None) => Some(None),
            None => None,
        };
        let patch = args.into_patch(category_id);
        ok(self.service.update_task(&user, id, patch).await?)
    }

    #[tool(
        description = text::DELETE_TASK,
        annotations(destructive_hint = true, idempotent_hint = true)
    )]
    async fn delete_task(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<TaskIdArgs>>,
    ) -> Reply {
        let id = self.ids(&user).task(args.parse()?.task_id).await?;
        self.service.delete_task(&user, id).await?;
        ok(json!({"deleted": true, "task_id": id}))
    }

    #[tool(
        description = text::COMPLETE_TASK,
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn complete_task(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<TaskIdArgs>>,
    ) -> Reply {
        let id = self.ids(&user).task(args.parse()?.task_id).await?;
        ok(self.service.complete_task(&user, id).await?)
    }

    #[tool(description = text::CREATE_CATEGORY, annotations(destructive_hint = false))]
    async fn create_category(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<CreateCategoryArgs>>,
    ) -> Reply {
        ok(self
            .service
            .create_category(&user, args.parse()?.into())
            .await?)
    }

    #[tool(description = text::LIST_CATEGORIES, annotations(read_only_hint = true))]
    async fn list_categories(&self, Caller(user): Caller) -> Reply {
        ok(json!({"categories": self.service.list_categories(&user).await?}))
    }

    #[tool(
        description = text::UPDATE_CATEGORY,
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn update_category(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<UpdateCategoryArgs>>,
    ) -> Reply {
        let (id, patch) = args.parse()?.into_patch();
        let id = self.ids(&user).category(id).await?;
        ok(self.service.update_category(&user, id, patch).await?)
    }

    #[tool(
        description = text::DELETE_CATEGORY,
        annotations(destructive_hint = true, idempotent_hint = true)
    )]
    async fn delete_category(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<CategoryIdArgs>>,
    ) -> Reply {
        let id = self.ids(&user).category(args.parse()?.category_id).await?;
        self.service.delete_category(&user, id).await?;
        ok(json!({"deleted": true, "category_id": id}))
    }

    #[tool(description = text::CREATE_TAG, annotations(destructive_hint = false))]
    async fn create_tag(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<CreateTagArgs>>,
    ) -> Reply {
        ok(self.service.create_tag(&user, args.parse()?.into()).await?)
    }

    #[tool(description = text::LIST_TAGS, annotations(read_only_hint = true))]
    async fn list_tags(&self, Caller(user): Caller) -> Reply {
        ok(json!({"tags": self.service.list_tags(&user).await?}))
    }

    #[tool(
        description = text::UPDATE_TAG,
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn update_tag(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<UpdateTagArgs>>,
    ) -> Reply {
        let (id, patch) = args.parse()?.into_patch();
        let id = self.ids(&user).tag(id).await?;
        ok(self.service.update_tag(&user, id, patch).await?)
    }

    #[tool(
        description = text::DELETE_TAG,
        annotations(destructive_hint = true, idempotent_hint = true)
    )]
    async fn delete_tag(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<TagIdArgs>>,
    ) -> Reply {
        let id = self.ids(&user).tag(args.parse()?.tag_id).await?;
        self.service.delete_tag(&user, id).await?;
        ok(json!({"deleted": true, "tag_id": id}))
    }

    #[tool(
        description = text::ADD_TAG_TO_TASK,
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn add_tag_to_task(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<TaskTagArgs>>,
    ) -> Reply {
        let (task_id, tag_id) = self.ids(&user).task_and_tag(args.parse()?).await?;
        ok(self.service.add_tag_to_task(&user, task_id, tag_id).await?)
    }

    #[tool(
        description = text::REMOVE_TAG_FROM_TASK,
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn remove_tag_from_task(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<TaskTagArgs>>,
    ) -> Reply {
        let (task_id, tag_id) = self.ids(&user).task_and_tag(args.parse()?).await?;
        ok(self
            .service
            .remove_tag_from_task(&user, task_id, tag_id)
            .await?)
    }

    #[tool(description = text::SEARCH_TASKS, annotations(read_only_hint = true))]
    async fn search_tasks(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<SearchTasksArgs>>,
    ) -> Reply {
        let args = args.parse()?;
        let ids = self.ids(&user);
        let category_id = ids.category_filter(args.category_id).await?;
        let tag_ids = ids.tag_filter(&args.tag_ids).await?;
        let search = args.into_query(category_id, tag_ids);
        ok(self.service.search_tasks(&user, &search).await?)
    }

    #[tool(
        description = text::SET_REMINDER,
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn set_reminder(
        &self,
        Caller(user): Caller,
        Parameters(args): Parameters<Input<SetReminderArgs>>,
    ) -> Reply {
        let (id, spec) = args.parse()?.into_spec()?;
        let id = self.ids(&user).task(id).await?;
        ok(self.service.set_reminder(&user, id, spec).await?)
    }
}

/// The tool router, built once per process (schemas included) and shared by every request.
pub(super) fn build() -> ToolRouter<TodoMcp> {
    TodoMcp::tool_router()
}
