//! The 18 tools of the original system and the names of their arguments: what the MCP suites
//! expect the tool list to offer, and what the argument generators of the property tests
//! (`src/mcp/args/props.rs` includes this file by path) build arguments from.

/// Each tool and its argument names.
pub(crate) const TOOL_ARGS: &[(&str, &[&str])] = &[
    (
        "add_task",
        &[
            "title",
            "description",
            "priority",
            "category_id",
            "tag_ids",
            "due_date",
            "recurrence_rule",
            "remind_at",
        ],
    ),
    (
        "list_tasks",
        &[
            "status",
            "priority",
            "category_id",
            "tag_ids",
            "due_before",
            "due_after",
            "sort_by",
            "order",
            "limit",
            "offset",
        ],
    ),
    ("get_task", &["task_id"]),
    (
        "update_task",
        &[
            "task_id",
            "title",
            "description",
            "completed",
            "priority",
            "category_id",
            "due_date",
            "recurrence_rule",
            "remind_at",
        ],
    ),
    ("delete_task", &["task_id"]),
    ("complete_task", &["task_id"]),
    ("create_category", &["name", "color"]),
    ("list_categories", &[]),
    ("update_category", &["category_id", "name", "color"]),
    ("delete_category", &["category_id"]),
    ("create_tag", &["name", "color"]),
    ("list_tags", &[]),
    ("update_tag", &["tag_id", "name", "color"]),
    ("delete_tag", &["tag_id"]),
    ("add_tag_to_task", &["task_id", "tag_id"]),
    ("remove_tag_from_task", &["task_id", "tag_id"]),
    (
        "search_tasks",
        &[
            "query",
            "priority",
            "category_id",
            "tag_ids",
            "limit",
            "offset",
        ],
    ),
    (
        "set_reminder",
        &["task_id", "remind_before_minutes", "remind_at"],
    ),
];
