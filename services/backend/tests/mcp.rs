//! The MCP endpoint, end to end: the real app router served on a loopback port, a fresh
//! database per test, and rmcp's own client speaking Streamable HTTP with a bearer token.
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:<port>/postgres cargo test -p backend
//! --test mcp` (a PostgreSQL from `cargo xtask up`).

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

mod support;

use std::collections::BTreeSet;

use backend::app::{self};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use middleware::AppTokenLayer;
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::mcp::{all_refused, connect, err, ok, serve};
use support::tool_args::TOOL_ARGS;
use uuid::Uuid;

/// The HS256 key the test server trusts and the tests sign with.
const KEY: &str = "mcp-test-fixture-key-not-a-secret";

/// A signed token for `sub`, valid for an hour.
fn token_for(sub: &str) -> String {
    sign(sub, KEY, Utc::now() + Duration::hours(1))
}

fn sign(sub: &str, key: &str, expires: DateTime<Utc>) -> String {
    let claims = json!({
        "sub": sub,
        "email": format!("{sub}@example.test"),
        "name": sub,
        "iat": Utc::now().timestamp(),
        "exp": expires.timestamp(),
    });
    support::hs256_token(key, &claims)
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

fn ids(items: &Value) -> BTreeSet<String> {
    items.as_array().unwrap().iter().map(id).collect()
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// A whole-second UTC time `days` from now.
fn days_from_now(days: i64) -> DateTime<Utc> {
    (Utc::now() + Duration::days(days)).trunc_subsecs(0)
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn lists_exactly_the_18_tools_with_input_schemas(pool: PgPool) {
    let url = serve(pool, KEY).await;
    let client = connect(&url, token_for("alice")).await;

    let info = client.peer_info().unwrap();
    assert!(info.capabilities.tools.is_some());
    assert!(
        info.instructions
            .as_deref()
            .unwrap()
            .contains("access token")
    );

    let tools = client.list_all_tools().await.unwrap();
    let names: BTreeSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        TOOL_ARGS
            .iter()
            .map(|(tool, _)| *tool)
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(tools.len(), 18);
    for tool in &tools {
        let schema = &tool.input_schema;
        assert_eq!(schema.get("type"), Some(&json!("object")), "{}", tool.name);
        let props = schema.get("properties").and_then(Value::as_object);
        // The user comes from the token: no tool takes one.
        assert!(
            props.is_none_or(|p| !p.contains_key("user_id")),
            "{} takes a user_id",
            tool.name
        );
        assert!(
            tool.description.as_deref().is_some_and(|d| d.len() > 60),
            "{} needs a helpful description",
            tool.name
        );
    }
    let tool = |name: &str| tools.iter().find(|t| t.name == name).unwrap();
    let props = |name: &str| -> Vec<String> {
        let schema = &tool(name).input_schema;
        let mut keys: Vec<String> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };
    let required = |name: &str| tool(name).input_schema.get("required").cloned();

    // The original parameter names, on every tool.
    for (name, params) in TOOL_ARGS {
        for p in *params {
            assert!(props(name).contains(&(*p).to_owned()), "{name}.{p}");
        }
    }
    assert_eq!(required("add_task"), Some(json!(["title"])));
    // The original contract's search parameters, filters included.
    assert_eq!(
        props("search_tasks"),
        [
            "category_id",
            "limit",
            "offset",
            "priority",
            "query",
            "tag_ids"
        ]
    );
    assert_eq!(required("search_tasks"), Some(json!(["query"])));
    assert_eq!(
        props("set_reminder"),
        ["remind_at", "remind_before_minutes", "task_id"]
    );
    assert_eq!(required("set_reminder"), Some(json!(["task_id"])));
    assert_eq!(props("add_tag_to_task"), ["tag_id", "task_id"]);
    assert_eq!(props("list_categories"), Vec::<String>::new());
    for name in ["get_task", "delete_task", "complete_task"] {
        assert_eq!(props(name), ["task_id"], "{name}");
    }

    // The natural-language guide.
    let add = tool("add_task").description.clone().unwrap();
    for phrase in [
        "FREQ=DAILY",
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        "FREQ=WEEKLY;BYDAY=MO,FR",
        "FREQ=WEEKLY;INTERVAL=2",
        "FREQ=MONTHLY;BYMONTHDAY=15",
        "FREQ=MONTHLY;BYDAY=-1FR",
        "COUNT=10",
    ] {
        assert!(add.contains(phrase), "add_task description lacks {phrase}");
    }
    assert!(
        tool("set_reminder")
            .description
            .as_deref()
            .unwrap()
            .contains("1440")
    );
    assert!(
        tool("get_task")
            .annotations
            .as_ref()
            .unwrap()
            .read_only_hint
            == Some(true)
    );
    client.cancel().await.unwrap();
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn task_tools_create_read_update_complete_and_delete(pool: PgPool) {
    let url = serve(pool, KEY).await;
    let client = connect(&url, token_for("alice")).await;
    let due = days_from_now(3);

    let created = ok(
        &client,
        "add_task",
        json!({
            "title": "  Water the plants  ",
            "description": "the ferns too",
            "priority": "HIGH",
            "due_date": due.to_rfc3339(),
            "recurrence_rule": "freq=weekly;byday=mo,fr",
            // An old prompt's user id is ignored: the token decides.
            "user_id": "mallory",
        }),
    )
    .await;
    let task_id = id(&created);
    assert_eq!(created["title"], "Water the plants");
    assert_eq!(created["description"], "the ferns too");
    assert_eq!(created["priority"], "high");
    assert_eq!(created["completed"], false);
    assert_eq!(time(&created["due_at"]), due);
    assert_eq!(created["recurrence_rule"], "FREQ=WEEKLY;BYDAY=MO,FR");
    assert_eq!(created["tags"], json!([]));

    let got = ok(&client, "get_task", json!({"task_id": task_id})).await;
    assert_eq!(got, created);

    // A timestamp with an offset is converted to UTC.
    let updated = ok(
        &client,
        "update_task",
        json!({
            "task_id": task_id,
            "title": "Water all plants",
            "priority": "urgent",
            "due_date": "2031-05-01T09:30:00+02:00",
            // null means "leave as is", as in the original system.
            "description": null,
        }),
    )
    .await;
    assert_eq!(updated["title"], "Water all plants");
    assert_eq!(updated["priority"], "urgent");
    assert_eq!(updated["description"], "the ferns too");
    assert_eq!(updated["due_at"], "2031-05-01T07:30:00Z");
    assert_eq!(updated["recurrence_rule"], "FREQ=WEEKLY;BYDAY=MO,FR");

    // "" removes a clearable value.
    let cleared = ok(
        &client,
        "update_task",
        json!({"task_id": task_id, "recurrence_rule": ""}),
    )
    .await;
    assert_eq!(cleared["recurrence_rule"], Value::Null);
    assert_eq!(cleared["due_at"], "2031-05-01T07:30:00Z");

    let done = ok(&client, "complete_task", json!({"task_id": task_id})).await;
    assert_eq!(done["completed"], true);
    assert!(done["completed_at"].is_string());
    let reopened = ok(
        &client,
        "update_task",
        json!({"task_id": task_id, "completed": false}),
    )
    .await;
    assert_eq!(reopened["completed"], false);
    assert_eq!(reopened["completed_at"], Value::Null);

    let deleted = ok(&client, "delete_task", json!({"task_id": task_id})).await;
    assert_eq!(deleted, json!({"deleted": true, "task_id": task_id}));
    all_refused(
        &client,
        "TASK_NOT_FOUND",
        vec![
            ("get_task", json!({"task_id": task_id})),
            ("delete_task", json!({"task_id": task_id})),
        ],
    )
    .await;
    client.cancel().await.unwrap();
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn category_and_tag_tools(pool: PgPool) {
    let url = serve(pool, KEY).await;
    let client = connect(&url, token_for("alice")).await;

    let work = ok(
        &client,
        "create_category",
        json!({"name": "Work", "color": "#ff5733"}),
    )
    .await;
    assert_eq!(work["name"], "Work");
    assert_eq!(work["color"], "#FF5733");
    let home = ok(&client, "create_category", json!({"name": "Home"})).await;
    let urgent = ok(
        &client,
        "create_tag",
        json!({"name": "urgent", "color": "#00AA00"}),
    )
    .await;
    let errand = ok(&client, "create_tag", json!({"name": "errand"})).await;

    let task = ok(
        &client,
        "add_task",
        json!({
            "title": "Send the report",
            "category_id": id(&work),
            "tag_ids": [id(&urgent)],
        }),
    )
    .await;
    let task_id = id(&task);
    assert_eq!(task["category"]["id"], work["id"]);
    assert_eq!(ids(&task["tags"]), BTreeSet::from([id(&urgent)]));

    let categories = ok(&client, "list_categories", json!({})).await;
    assert_eq!(
        ids(&categories["categories"]),
        BTreeSet::from([id(&work), id(&home)])
    );
    let work_listed = categories["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == work["id"])
        .unwrap();
    assert_eq!(work_listed["task_count"], 1);
    let tags = ok(&client, "list_tags", json!({})).await;
    assert_eq!(
        ids(&tags["tags"]),
        BTreeSet::from([id(&urgent), id(&errand)])
    );

    // Tags on and off.
    let tagged = ok(
        &client,
        "add_tag_to_task",
        json!({"task_id": task_id, "tag_id": id(&errand)}),
    )
    .await;
    assert_eq!(
        ids(&tagged["tags"]),
        BTreeSet::from([id(&urgent), id(&errand)])
    );
    let untagged = ok(
        &client,
        "remove_tag_from_task",
        json!({"task_id": task_id, "tag_id": id(&urgent)}),
    )
    .await;
    assert_eq!(ids(&untagged["tags"]), BTreeSet::from([id(&errand)]));

    // Renames and colours; "" removes a colour.
    let renamed = ok(
        &client,
        "update_category",
        json!({"category_id": id(&work), "name": "Office", "color": ""}),
    )
    .await;
    assert_eq!(renamed["name"], "Office");
    assert_eq!(renamed["color"], Value::Null);
    let recoloured = ok(
        &client,
        "update_tag",
        json!({"tag_id": id(&errand), "name": "errands", "color": "#0066ff"}),
    )
    .await;
    assert_eq!(recoloured["name"], "errands");
    assert_eq!(recoloured["color"], "#0066FF");
    let task_now = ok(&client, "get_task", json!({"task_id": task_id})).await;
    assert_eq!(task_now["category"]["name"], "Office");
    assert_eq!(task_now["tags"][0]["name"], "errands");

    // Moving a task out of its category.
    let moved = ok(
        &client,
        "update_task",
        json!({"task_id": task_id, "category_id": id(&home)}),
    )
    .await;
    assert_eq!(moved["category"]["id"], home["id"]);

    // Deleting a tag removes it from the task; deleting a category keeps the task.
    let gone = ok(&client, "delete_tag", json!({"tag_id": id(&errand)})).await;
    assert_eq!(gone, json!({"deleted": true, "tag_id": id(&errand)}));
    let gone = ok(
        &client,
        "delete_category",
        json!({"category_id": id(&home)}),
    )
    .await;
    assert_eq!(gone, json!({"deleted": true, "category_id": id(&home)}));
    let task_now = ok(&client, "get_task", json!({"task_id": task_id})).await;
    assert_eq!(task_now["tags"], json!([]));
    assert_eq!(task_now["category"], Value::Null);
    let tags = ok(&client, "list_tags", json!({})).await;
    assert_eq!(ids(&tags["tags"]), BTreeSet::from([id(&urgent)]));
    all_refused(
        &client,
        "NOT_FOUND",
        vec![
            ("delete_category", json!({"category_id": id(&home)})),
            ("update_tag", json!({"tag_id": id(&errand), "name": "x"})),
        ],
    )
    .await;
    client.cancel().await.unwrap();
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn list_and_search_filter_sort_and_page(pool: PgPool) {
    let url = serve(pool, KEY).await;
    let client = connect(&url, token_for("alice")).await;
    let home = ok(&client, "create_category", json!({"name": "Home"})).await;
    let tag = ok(&client, "create_tag", json!({"name": "garden"})).await;

    let soon = days_from_now(1);
    let later = days_from_now(10);
    let a = ok(
        &client,
        "add_task",
        json!({"title": "Mow the lawn", "due_date": later.to_rfc3339(), "priority": "low",
               "tag_ids": [id(&tag)], "category_id": id(&home)}),
    )
    .await;
    let b = ok(
        &client,
        "add_task",
        json!({"title": "Call the dentist", "due_date": soon.to_rfc3339(), "priority": "urgent",
               "description": "about the crown"}),
    )
    .await;
    let c = ok(&client, "add_task", json!({"title": "Read a book"})).await;
    ok(&client, "complete_task", json!({"task_id": id(&c)})).await;

    let all = ok(&client, "list_tasks", json!({})).await;
    assert_eq!(all["total"], 3);
    assert_eq!(all["limit"], 50);
    // Newest first by default.
    assert_eq!(all["items"][0]["id"], c["id"]);

    let pending = ok(&client, "list_tasks", json!({"status": "pending"})).await;
    assert_eq!(ids(&pending["items"]), BTreeSet::from([id(&a), id(&b)]));
    let completed = ok(&client, "list_tasks", json!({"status": "completed"})).await;
    assert_eq!(ids(&completed["items"]), BTreeSet::from([id(&c)]));

    let by_due = ok(
        &client,
        "list_tasks",
        json!({"sort_by": "due_date", "status": "pending"}),
    )
    .await;
    assert_eq!(by_due["items"][0]["id"], b["id"]);
    assert_eq!(by_due["items"][1]["id"], a["id"]);
    let by_priority = ok(&client, "list_tasks", json!({"sort_by": "priority"})).await;
    assert_eq!(by_priority["items"][0]["id"], b["id"]);

    let urgent = ok(&client, "list_tasks", json!({"priority": "urgent"})).await;
    assert_eq!(ids(&urgent["items"]), BTreeSet::from([id(&b)]));
    let tagged = ok(&client, "list_tasks", json!({"tag_ids": [id(&tag)]})).await;
    assert_eq!(ids(&tagged["items"]), BTreeSet::from([id(&a)]));
    let in_home = ok(&client, "list_tasks", json!({"category_id": id(&home)})).await;
    assert_eq!(ids(&in_home["items"]), BTreeSet::from([id(&a)]));
    let due_soon = ok(
        &client,
        "list_tasks",
        json!({"due_after": Utc::now().to_rfc3339(), "due_before": days_from_now(2).to_rfc3339()}),
    )
    .await;
    assert_eq!(ids(&due_soon["items"]), BTreeSet::from([id(&b)]));

    let page = ok(&client, "list_tasks", json!({"limit": 2, "offset": 2})).await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    let found = ok(&client, "search_tasks", json!({"query": "dentist"})).await;
    assert_eq!(ids(&found["items"]), BTreeSet::from([id(&b)]));
    let found = ok(
        &client,
        "search_tasks",
        json!({"query": "crown", "limit": 5}),
    )
    .await;
    assert_eq!(ids(&found["items"]), BTreeSet::from([id(&b)]));
    assert_eq!(found["limit"], 5);
    let none = ok(&client, "search_tasks", json!({"query": "spaceship"})).await;
    assert_eq!(none["total"], 0);
    client.cancel().await.unwrap();
}

/// MCP parity: `search_tasks` takes the original contract's `priority`, `category_id`,
/// `tag_ids` and `offset`, each narrowing the matches, and reports a malformed value as a
/// `VALIDATION_ERROR` naming the argument.
#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn search_tasks_filters_by_the_original_parameters(pool: PgPool) {
    let url = serve(pool, KEY).await;
    let client = connect(&url, token_for("alice")).await;
    let home = ok(&client, "create_category", json!({"name": "Home"})).await;
    let garden = ok(&client, "create_tag", json!({"name": "garden"})).await;
    let kitchen = ok(&client, "create_tag", json!({"name": "kitchen"})).await;
    let lawn = ok(
        &client,
        "add_task",
        json!({"title": "Fix the lawn", "priority": "low", "category_id": id(&home),
               "tag_ids": [id(&garden)]}),
    )
    .await;
    let sink = ok(
        &client,
        "add_task",
        json!({"title": "Fix the sink", "priority": "urgent", "category_id": id(&home),
               "tag_ids": [id(&kitchen)]}),
    )
    .await;
    let bike = ok(
        &client,
        "add_task",
        json!({"title": "Fix the bike", "priority": "urgent"}),
    )
    .await;
    // Matches every filter below but not the words.
    ok(
        &client,
        "add_task",
        json!({"title": "Paint the fence", "priority": "urgent", "category_id": id(&home),
               "tag_ids": [id(&garden)]}),
    )
    .await;

    let search = |args: Value| {
        let client = &client;
        async move {
            let page = ok(client, "search_tasks", args).await;
            (page["total"].as_i64().unwrap(), ids(&page["items"]))
        }
    };
    let all = search(json!({"query": "fix"})).await;
    assert_eq!(all, (3, BTreeSet::from([id(&lawn), id(&sink), id(&bike)])));
    assert_eq!(
        search(json!({"query": "fix", "priority": "URGENT"})).await,
        (2, BTreeSet::from([id(&sink), id(&bike)]))
    );
    assert_eq!(
        search(json!({"query": "fix", "category_id": id(&home)})).await,
        (2, BTreeSet::from([id(&lawn), id(&sink)]))
    );
    assert_eq!(
        search(json!({"query": "fix", "tag_ids": [id(&garden)]})).await,
        (1, BTreeSet::from([id(&lawn)]))
    );
    assert_eq!(
        search(json!({"query": "fix", "tag_ids": [id(&garden), id(&kitchen)]})).await,
        (2, BTreeSet::from([id(&lawn), id(&sink)]))
    );
    assert_eq!(
        search(
            json!({"query": "fix", "priority": "urgent", "category_id": id(&home),
                      "tag_ids": [id(&kitchen)]})
        )
        .await,
        (1, BTreeSet::from([id(&sink)]))
    );
    // Nulls, as models send them, mean "no filter".
    assert_eq!(
        search(
            json!({"query": "fix", "priority": null, "category_id": null,
                      "tag_ids": null, "offset": null})
        )
        .await,
        all
    );

    // offset pages through the filtered matches; the pages together are the whole set.
    let mut paged = BTreeSet::new();
    for offset in 0..3 {
        let page = ok(
            &client,
            "search_tasks",
            json!({"query": "fix", "limit": 1, "offset": offset}),
        )
        .await;
        assert_eq!(
            (page["total"].as_i64(), page["offset"].as_i64()),
            (Some(3), Some(offset))
        );
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        paged.extend(ids(&page["items"]));
    }
    assert_eq!(paged, all.1);
    let past_the_end = ok(
        &client,
        "search_tasks",
        json!({"query": "fix", "offset": 3}),
    )
    .await;
    assert_eq!(past_the_end["total"], 3);
    assert_eq!(past_the_end["items"], json!([]));

    // Malformed values are tool errors naming the argument.
    for (args, field) in [
        (json!({"query": "fix", "priority": "asap"}), "priority"),
        (
            json!({"query": "fix", "category_id": "home"}),
            "category_id",
        ),
        (json!({"query": "fix", "category_id": 7.5}), "category_id"),
        (json!({"query": "fix", "category_id": -7}), "category_id"),
        (
            json!({"query": "fix", "tag_ids": [id(&garden), "x"]}),
            "tag_ids[1]",
        ),
        (json!({"query": "fix", "tag_ids": id(&garden)}), "tag_ids"),
        (json!({"query": "fix", "offset": -1}), "offset"),
        (json!({"query": "fix", "offset": "2"}), "offset"),
    ] {
        let body = err(&client, "search_tasks", args.clone(), "VALIDATION_ERROR").await;
        assert_eq!(body["field"], field, "{args}: {body}");
    }

    // Another user's category or tag narrows Bob's search to nothing (it is not his), and so
    // does an original system's id that names none of his labels.
    let bob = connect(&url, token_for("bob")).await;
    ok(&bob, "add_task", json!({"title": "Fix the roof"})).await;
    let mine = ok(&bob, "search_tasks", json!({"query": "fix"})).await;
    assert_eq!(mine["total"], 1);
    for args in [
        json!({"query": "fix", "category_id": id(&home)}),
        json!({"query": "fix", "tag_ids": [id(&garden)]}),
        json!({"query": "fix", "category_id": 7}),
        json!({"query": "fix", "tag_ids": ["7"]}),
    ] {
        let page = ok(&bob, "search_tasks", args).await;
        assert_eq!(page["total"], 0, "{page}");
    }
    bob.cancel().await.unwrap();
    client.cancel().await.unwrap();
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn set_reminder_relative_or_absolute(pool: PgPool) {
    let url = serve(pool, KEY).await;
    let client = connect(&url, token_for("alice")).await;
    let due = days_from_now(5);
    let task = ok(
        &client,
        "add_task",
        json!({"title": "Dentist", "due_date": due.to_rfc3339()}),
    )
    .await;
    let task_id = id(&task);

    // "one day before" → 1440 minutes.
    let reminded = ok(
        &client,
        "set_reminder",
        json!({"task_id": task_id, "remind_before_minutes": 1440}),
    )
    .await;
    assert_eq!(time(&reminded["remind_at"]), due - Duration::days(1));

    let at = days_from_now(2);
    let reminded = ok(
        &client,
        "set_reminder",
        json!({"task_id": task_id, "remind_at": at.to_rfc3339(), "remind_before_minutes": null}),
    )
    .await;
    assert_eq!(time(&reminded["remind_at"]), at);

    // Cancelling goes through update_task.
    let cancelled = ok(
        &client,
        "update_task",
        json!({"task_id": task_id, "remind_at": ""}),
    )
    .await;
    assert_eq!(cancelled["remind_at"], Value::Null);

    // Exactly one of the two.
    let both = err(
        &client,
        "set_reminder",
        json!({"task_id": task_id, "remind_before_minutes": 10, "remind_at": at.to_rfc3339()}),
        "VALIDATION_ERROR",
    )
    .await;
    assert!(both["message"].as_str().unwrap().contains("exactly one"));
    err(
        &client,
        "set_reminder",
        json!({"task_id": task_id}),
        "VALIDATION_ERROR",
    )
    .await;
    // A reminder after the due date, or one for a task without a due date.
    err(
        &client,
        "set_reminder",
        json!({"task_id": task_id, "remind_at": (due + Duration::hours(1)).to_rfc3339()}),
        "VALIDATION_ERROR",
    )
    .await;
    let undated = ok(&client, "add_task", json!({"title": "Someday"})).await;
    err(
        &client,
        "set_reminder",
        json!({"task_id": id(&undated), "remind_before_minutes": 60}),
        "VALIDATION_ERROR",
    )
    .await;
    err(
        &client,
        "set_reminder",
        json!({"task_id": Uuid::new_v4(), "remind_before_minutes": 60}),
        "TASK_NOT_FOUND",
    )
    .await;
    client.cancel().await.unwrap();
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn users_never_see_each_others_data(pool: PgPool) {
    let url = serve(pool, KEY).await;
    let alice = connect(&url, token_for("alice")).await;
    let bob = connect(&url, token_for("bob")).await;

    let category = ok(&alice, "create_category", json!({"name": "Secret"})).await;
    let tag = ok(&alice, "create_tag", json!({"name": "private"})).await;
    let task = ok(
        &alice,
        "add_task",
        json!({"title": "Alice's plan", "description": "classified",
               "category_id": id(&category), "tag_ids": [id(&tag)],
               "due_date": days_from_now(3).to_rfc3339()}),
    )
    .await;
    let task_id = id(&task);
    let bobs = ok(&bob, "add_task", json!({"title": "Bob's chores"})).await;

    // Every task tool answers TASK_NOT_FOUND for someone else's task — and Bob's suggestions
    // are Bob's tasks only.
    let not_found = err(
        &bob,
        "get_task",
        json!({"task_id": task_id}),
        "TASK_NOT_FOUND",
    )
    .await;
    assert_eq!(ids(&not_found["suggestions"]), BTreeSet::from([id(&bobs)]));
    all_refused(
        &bob,
        "TASK_NOT_FOUND",
        vec![
            (
                "update_task",
                json!({"task_id": task_id, "title": "mine now"}),
            ),
            ("complete_task", json!({"task_id": task_id})),
            (
                "set_reminder",
                json!({"task_id": task_id, "remind_before_minutes": 60}),
            ),
            ("delete_task", json!({"task_id": task_id})),
        ],
    )
    .await;
    let bobs_tag = ok(&bob, "create_tag", json!({"name": "private"})).await;
    err(
        &bob,
        "add_tag_to_task",
        json!({"task_id": task_id, "tag_id": id(&bobs_tag)}),
        "TASK_NOT_FOUND",
    )
    .await;
    // Nor can Bob use Alice's category or tag on his own task.
    all_refused(
        &bob,
        "NOT_FOUND",
        vec![
            (
                "add_tag_to_task",
                json!({"task_id": id(&bobs), "tag_id": id(&tag)}),
            ),
            (
                "update_task",
                json!({"task_id": id(&bobs), "category_id": id(&category)}),
            ),
            (
                "update_category",
                json!({"category_id": id(&category), "name": "hacked"}),
            ),
            ("delete_tag", json!({"tag_id": id(&tag)})),
        ],
    )
    .await;

    // Lists and search show Bob only his own data, whatever user_id he claims.
    let listed = ok(&bob, "list_tasks", json!({"user_id": "alice"})).await;
    assert_eq!(ids(&listed["items"]), BTreeSet::from([id(&bobs)]));
    let found = ok(&bob, "search_tasks", json!({"query": "classified"})).await;
    assert_eq!(found["total"], 0);
    let found = ok(&bob, "search_tasks", json!({"query": "plan"})).await;
    assert_eq!(found["total"], 0);
    let categories = ok(&bob, "list_categories", json!({})).await;
    assert_eq!(categories["categories"], json!([]));
    let tags = ok(&bob, "list_tags", json!({})).await;
    assert_eq!(ids(&tags["tags"]), BTreeSet::from([id(&bobs_tag)]));

    // Alice's data is untouched.
    let again = ok(&alice, "get_task", json!({"task_id": task_id})).await;
    assert_eq!(again, task);
    let categories = ok(&alice, "list_categories", json!({})).await;
    assert_eq!(categories["categories"][0]["name"], "Secret");
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn bad_input_is_reported_as_a_tool_error(pool: PgPool) {
    let url = serve(pool, KEY).await;
    let client = connect(&url, token_for("alice")).await;

    let long = err(
        &client,
        "add_task",
        json!({"title": "x".repeat(201)}),
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(long["field"], "title");
    err(
        &client,
        "add_task",
        json!({"title": "   "}),
        "VALIDATION_ERROR",
    )
    .await;
    let missing = err(&client, "add_task", json!({}), "VALIDATION_ERROR").await;
    assert!(missing["message"].as_str().unwrap().contains("title"));

    // Eleven tags on a new task, and an eleventh tag on an existing one.
    let mut tag_ids = Vec::new();
    for n in 0..11 {
        let tag = ok(&client, "create_tag", json!({"name": format!("t{n}")})).await;
        tag_ids.push(id(&tag));
    }
    err(
        &client,
        "add_task",
        json!({"title": "Too many tags", "tag_ids": tag_ids}),
        "LIMIT_EXCEEDED",
    )
    .await;
    let task = ok(
        &client,
        "add_task",
        json!({"title": "Ten tags", "tag_ids": tag_ids[..10]}),
    )
    .await;
    assert_eq!(task["tags"].as_array().unwrap().len(), 10);
    err(
        &client,
        "add_tag_to_task",
        json!({"task_id": id(&task), "tag_id": tag_ids[10]}),
        "LIMIT_EXCEEDED",
    )
    .await;

    let colour = err(
        &client,
        "create_category",
        json!({"name": "Work", "color": "red"}),
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(colour["field"], "color");
    all_refused(
        &client,
        "VALIDATION_ERROR",
        vec![
            ("create_tag", json!({"name": "x", "color": "#12345"})),
            ("create_category", json!({"name": "x".repeat(51)})),
            ("create_tag", json!({"name": "x".repeat(31)})),
        ],
    )
    .await;
    ok(&client, "create_category", json!({"name": "Work"})).await;
    all_refused(
        &client,
        "CONFLICT",
        vec![
            ("create_category", json!({"name": "work"})),
            ("create_tag", json!({"name": "T0"})),
        ],
    )
    .await;

    let rule = err(
        &client,
        "add_task",
        json!({"title": "Hourly", "due_date": days_from_now(1).to_rfc3339(),
               "recurrence_rule": "FREQ=HOURLY"}),
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(rule["field"], "recurrence_rule");
    err(
        &client,
        "update_task",
        json!({"task_id": id(&task), "recurrence_rule": "FREQ=WEEKLY;BYDAY=XX"}),
        "VALIDATION_ERROR",
    )
    .await;

    // Arguments that do not parse name the argument.
    let bad_id = err(
        &client,
        "get_task",
        json!({"task_id": "42a"}),
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(bad_id["field"], "task_id");
    // An integer is an original system's id: one that was never imported is not found.
    let unknown = err(
        &client,
        "get_task",
        json!({"task_id": "42"}),
        "TASK_NOT_FOUND",
    )
    .await;
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .starts_with("task 42 not found")
    );
    let no_offset = err(
        &client,
        "add_task",
        json!({"title": "x", "due_date": "2031-01-01T09:00:00"}),
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(no_offset["field"], "due_date");
    assert!(no_offset["message"].as_str().unwrap().contains("offset"));
    let priority = err(
        &client,
        "list_tasks",
        json!({"priority": "whenever"}),
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(priority["field"], "priority");
    err(
        &client,
        "search_tasks",
        json!({"query": "  "}),
        "VALIDATION_ERROR",
    )
    .await;
    client.cancel().await.unwrap();
}

/// Issue 9: text PostgreSQL would refuse, times out of range and undated recurring tasks are
/// tool errors naming the argument, like on REST, never `INTERNAL`.
#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn database_refused_input_is_a_validation_error(pool: PgPool) {
    let url = serve(pool, KEY).await;
    let client = connect(&url, token_for("alice")).await;
    let task = ok(&client, "add_task", json!({"title": "ok"})).await;
    let category = ok(&client, "create_category", json!({"name": "Work"})).await;
    let tag = ok(&client, "create_tag", json!({"name": "errand"})).await;
    let nul = "a\u{0}b";
    let due = days_from_now(1).to_rfc3339();
    let cases: [(&'static str, Value, &str); 17] = [
        (
            "add_task",
            json!({"title": "ok", "description": nul}),
            "description",
        ),
        ("add_task", json!({"title": nul}), "title"),
        (
            "add_task",
            json!({"title": "ok", "due_date": due, "recurrence_rule": format!("FREQ=DAILY{nul}")}),
            "recurrence_rule",
        ),
        (
            "update_task",
            json!({"task_id": id(&task), "description": nul}),
            "description",
        ),
        ("create_category", json!({"name": nul}), "name"),
        (
            "create_category",
            json!({"name": "x", "color": nul}),
            "color",
        ),
        (
            "update_category",
            json!({"category_id": id(&category), "name": nul}),
            "name",
        ),
        ("create_tag", json!({"name": nul}), "name"),
        (
            "update_tag",
            json!({"tag_id": id(&tag), "color": "#\u{0}00000"}),
            "color",
        ),
        ("search_tasks", json!({"query": nul}), "query"),
        // Times: 1970 to 9999 only.
        (
            "add_task",
            json!({"title": "t", "due_date": "0000-01-01T00:00:00Z"}),
            "due_date",
        ),
        (
            "add_task",
            json!({"title": "t", "due_date": "-5000-01-01T00:00:00Z"}),
            "due_date",
        ),
        (
            "update_task",
            json!({"task_id": id(&task), "remind_at": "9999-12-31T23:59:59-01:00"}),
            "remind_at",
        ),
        (
            "set_reminder",
            json!({"task_id": id(&task), "remind_at": "1969-07-20T20:17:00Z"}),
            "remind_at",
        ),
        (
            "list_tasks",
            json!({"due_before": "0001-01-01T00:00:00Z"}),
            "due_before",
        ),
        // A recurring task needs a due date, as on REST.
        (
            "add_task",
            json!({"title": "gym", "recurrence_rule": "FREQ=DAILY"}),
            "due_date",
        ),
        (
            "update_task",
            json!({"task_id": id(&task), "recurrence_rule": "FREQ=WEEKLY"}),
            "due_date",
        ),
    ];
    for (tool, args, field) in cases {
        let what = format!("{tool} {args}");
        let body = err(&client, tool, args, "VALIDATION_ERROR").await;
        assert_eq!(body["field"], field, "{what}: {body}");
    }
    let page = ok(&client, "list_tasks", json!({})).await;
    assert_eq!(page["total"], 1, "nothing refused was created");
    let unchanged = ok(&client, "get_task", json!({"task_id": id(&task)})).await;
    assert_eq!(unchanged, task);
    client.cancel().await.unwrap();
}

/// A raw Streamable HTTP POST to `/mcp` as alice.
async fn raw_post(url: &str, content_type: &str, accept: &str, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .header("accept", accept)
        .header("mcp-protocol-version", "2025-06-18")
        .header("authorization", format!("Bearer {}", token_for("alice")))
        .body(body)
        .send()
        .await
        .unwrap()
}

const ACCEPT_BOTH: &str = "application/json, text/event-stream";

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn non_object_arguments_never_become_a_task(pool: PgPool) {
    let url = serve(pool, KEY).await;
    for arguments in [json!(["x"]), json!(["t", "d", "urgent"]), json!("x")] {
        let call = json!({
            "jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "add_task", "arguments": arguments}
        });
        let response = raw_post(&url, "application/json", ACCEPT_BOTH, call.to_string()).await;
        let status = response.status();
        let body: Value = serde_json::from_str(&response.text().await.unwrap())
            .unwrap_or_else(|e| panic!("{arguments}: {status} answered non-JSON ({e})"));
        // Refused at the protocol level: MCP's `arguments` is an object, and rmcp reads a
        // `tools/call` with any other shape as an unknown method (a JSON-RPC error, no call).
        assert!(body["result"].is_null(), "{arguments}: {status} {body}");
        assert!(
            body["error"]["code"].is_i64(),
            "{arguments}: {status} {body}"
        );
    }
    let client = connect(&url, token_for("alice")).await;
    let page = ok(&client, "list_tasks", json!({})).await;
    assert_eq!(page["total"], 0);
    client.cancel().await.unwrap();
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn transport_errors_answer_the_json_error_shape(pool: PgPool) {
    let url = serve(pool, KEY).await;
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}}
    })
    .to_string();
    let cases = [
        (
            "not JSON",
            "application/json",
            ACCEPT_BOTH,
            "not json".to_owned(),
            400,
            "BAD_REQUEST",
        ),
        (
            "no JSON-RPC message",
            "application/json",
            ACCEPT_BOTH,
            json!({"hello": "world"}).to_string(),
            400,
            "BAD_REQUEST",
        ),
        (
            "wrong content type",
            "text/plain",
            ACCEPT_BOTH,
            initialize.clone(),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "no event-stream accepted",
            "application/json",
            "application/json",
            initialize.clone(),
            406,
            "NOT_ACCEPTABLE",
        ),
    ];
    for (case, content_type, accept, body, status, code) in cases {
        let response = raw_post(&url, content_type, accept, body).await;
        assert_eq!(response.status(), status, "{case}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{case}"
        );
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(body["code"], code, "{case}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}: {body}"
        );
    }
    let get = reqwest::Client::new()
        .get(&url)
        .header("accept", "text/event-stream")
        .header("authorization", format!("Bearer {}", token_for("alice")))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    let body: Value = serde_json::from_str(&get.text().await.unwrap()).unwrap();
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED");

    // MCP's own JSON-RPC errors are left as they are.
    let unknown = json!({"jsonrpc": "2.0", "id": 9, "method": "no/such/method"});
    let response = raw_post(&url, "application/json", ACCEPT_BOTH, unknown.to_string()).await;
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["id"], 9, "{body}");
    assert!(body["error"]["code"].is_i64(), "{body}");
}

/// A body over the app's limit without a Content-Length (streamed) answers 413 JSON too,
/// not a 500 from rmcp failing to read it.
#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn an_oversized_streamed_body_answers_413_json(pool: PgPool) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let state = support::app_state(pool, KEY).await;
    let router = app::router(state, AppTokenLayer::new(None));
    let big = format!(
        r#"{{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {{"name": "add_task", "arguments": {{"title": "x", "description": "{}"}}}}}}"#,
        "y".repeat(300 * 1024)
    );
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(big)]);
    let request = http::Request::post("/mcp")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .header("authorization", format!("Bearer {}", token_for("alice")))
        .body(axum::body::Body::from_stream(stream))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(status, 413, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn missing_task_suggests_recent_pending_tasks(pool: PgPool) {
    let url = serve(pool, KEY).await;
    let client = connect(&url, token_for("alice")).await;
    let mut created = Vec::new();
    for n in 0..7 {
        let task = ok(&client, "add_task", json!({"title": format!("task {n}")})).await;
        created.push(id(&task));
    }
    // The newest is done, so it is no suggestion.
    ok(&client, "complete_task", json!({"task_id": created[6]})).await;

    let missing = Uuid::new_v4();
    let body = err(
        &client,
        "get_task",
        json!({"task_id": missing}),
        "TASK_NOT_FOUND",
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&missing.to_string())
    );
    let suggestions = body["suggestions"].as_array().unwrap();
    assert_eq!(suggestions.len(), 5, "{body}");
    let titles: Vec<&str> = suggestions
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["task 5", "task 4", "task 3", "task 2", "task 1"]);
    assert!(
        suggestions
            .iter()
            .all(|s| s["id"].is_string() && s["priority"].is_string())
    );
    err(
        &client,
        "complete_task",
        json!({"task_id": missing}),
        "TASK_NOT_FOUND",
    )
    .await;
    client.cancel().await.unwrap();
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn requests_without_a_valid_token_are_refused_before_mcp(pool: PgPool) {
    let url = serve(pool, KEY).await;
    let http = reqwest::Client::new();
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}}
    });
    let post = |auth: Option<String>| {
        let mut request = http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(initialize.to_string());
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    let cases = [
        ("no token", None),
        ("not a bearer", Some("Basic YWxpY2U6eA==".to_owned())),
        ("garbage", Some("Bearer not-a-jwt".to_owned())),
        (
            "wrong key",
            Some(format!(
                "Bearer {}",
                sign("alice", "another-key", Utc::now() + Duration::hours(1))
            )),
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                sign("alice", KEY, Utc::now() - Duration::hours(1))
            )),
        ),
    ];
    for (case, auth) in cases {
        let response = post(auth).await.unwrap();
        assert_eq!(response.status(), 401, "{case}");
    }
    let response = post(Some(format!("Bearer {}", token_for("alice"))))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // rmcp's client sees the refusal too.
    let config = StreamableHttpClientTransportConfig::with_uri(url.as_str()).auth_header("nope");
    let refused = ().serve(StreamableHttpClientTransport::from_config(config)).await;
    assert!(refused.is_err());
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn a_tool_call_needs_no_session(pool: PgPool) {
    // Stateless: a request needs no earlier initialize on this replica, and no session id.
    let url = serve(pool, KEY).await;
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("authorization", format!("Bearer {}", token_for("alice")))
        .body(
            json!({
                "jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": {"name": "add_task", "arguments": {"title": "No session"}}
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("mcp-session-id").is_none());
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["id"], 7);
    let result = &body["result"];
    assert_ne!(result["isError"], true, "{body}");
    assert_eq!(result["structuredContent"]["title"], "No session");
}
