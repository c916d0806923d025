//! Per-user isolation under concurrency: eight users work at once through the complete router
//! — creating, updating, completing and deleting tasks, categories and tags, listing and
//! searching — and each keeps trying every other user's ids as they appear. No user ever sees,
//! changes or learns the existence of another's rows: another's id answers exactly what an id
//! that never existed answers, lists and searches hold exactly the user's own rows, and the
//! database ends with each user's rows as that user left them.
//!
//! `rest.rs` and `mcp.rs` check each route and tool for two users one call at a time; this
//! suite checks that the ownership checks hold while requests of many users interleave, over
//! REST and MCP at once. Needs `DATABASE_URL`.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use backend::app::{self};
use chrono::Utc;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use middleware::AppTokenLayer;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::mcp::{Client, connect, err, ok, serve};
use tower::ServiceExt;
use uuid::Uuid;

/// Test fixture only: the HS256 key the users' tokens are signed with.
const JWT_SECRET: &str = "fixture-isolation-tests-hs256-key";
const USERS: usize = 8;
const TASKS_PER_USER: usize = 6;
/// How many of the other users' newest rows each attack round tries.
const ATTACKED_PER_ROUND: usize = 2;

/// One user's view of the API.
#[derive(Clone)]
struct User {
    name: String,
    token: String,
    app: Router,
}

impl User {
    fn new(app: &Router, n: usize) -> Self {
        let name = format!("user{n}");
        let exp = Utc::now().timestamp() + 3600;
        let token = encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": name, "exp": exp, "email": format!("{name}@example.com")}),
            &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .unwrap();
        Self {
            name,
            token,
            app: app.clone(),
        }
    }

    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let res = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[track_caller]
    fn expect(&self, what: &str, (status, body): (StatusCode, Value), want: StatusCode) -> Value {
        assert_eq!(status, want, "{}: {what}: {body}", self.name);
        body
    }

    /// Creates `what` by posting `body` to `path`, which must answer 201; returns its id.
    async fn create(&self, what: &str, path: &str, body: Value) -> String {
        let row = self.expect(
            what,
            self.call(Method::POST, path, Some(body)).await,
            StatusCode::CREATED,
        );
        row["id"].as_str().unwrap().to_owned()
    }
}

/// Ids each user has created so far, for the others to try.
#[derive(Default)]
struct Seen {
    tasks: Vec<(usize, String)>,
    categories: Vec<(usize, String)>,
    tags: Vec<(usize, String)>,
}

impl Seen {
    /// The newest few ids of `kind` owned by someone other than `me`.
    fn others(list: &[(usize, String)], me: usize) -> Vec<String> {
        let mut ids: Vec<String> = list
            .iter()
            .rev()
            .filter(|(owner, _)| *owner != me)
            .map(|(_, id)| id.clone())
            .collect();
        ids.truncate(ATTACKED_PER_ROUND);
        ids
    }
}

/// What a user's own rows must be: live task ids, completed ones, titles.
#[derive(Debug, Default)]
struct Own {
    tasks: BTreeSet<String>,
    completed: BTreeSet<String>,
    titles: Vec<(String, String)>,
    category: String,
    tag: String,
}

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `GET uri` for another user's row answers exactly what it answers for an id that never
/// existed (the id itself aside): the same status, code and message, no hint of the row.
/// Another user's category or tag (`kind` is its path segment) can be neither renamed nor
/// deleted by `u`, and says so as if it did not exist.
async fn label_is_out_of_reach(u: &User, kind: &str, id: &str) {
    let uri = format!("/api/v1/{kind}/{id}");
    let renamed = json!({"name": format!("taken by {}", u.name)});
    indistinguishable_from_absent(u, Method::PATCH, &uri, id, Some(renamed)).await;
    indistinguishable_from_absent(u, Method::DELETE, &uri, id, None).await;
}

async fn indistinguishable_from_absent(
    u: &User,
    method: Method,
    uri: &str,
    id: &str,
    body: Option<Value>,
) {
    let absent = Uuid::now_v7().to_string();
    let (status, answer) = u.call(method.clone(), uri, body.clone()).await;
    let (want_status, want) = u
        .call(method.clone(), &uri.replace(id, &absent), body)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{}: {method} {uri}: {answer}",
        u.name
    );
    assert_eq!(
        (status, answer.to_string().replace(id, "<id>")),
        (want_status, want.to_string().replace(&absent, "<id>")),
        "{}: {method} {uri}",
        u.name
    );
}

/// One round of trying the other users' newest rows; none may be touched or revealed.
async fn attack(u: &User, me: usize, own: &Own, seen: &Mutex<Seen>) {
    let (tasks, categories, tags) = {
        let seen = seen.lock().unwrap();
        (
            Seen::others(&seen.tasks, me),
            Seen::others(&seen.categories, me),
            Seen::others(&seen.tags, me),
        )
    };
    let own_task = own.tasks.iter().next().cloned();
    for id in &tasks {
        let uri = format!("/api/v1/tasks/{id}");
        indistinguishable_from_absent(u, Method::GET, &uri, id, None).await;
        let stolen = json!({"title": format!("taken by {}", u.name)});
        indistinguishable_from_absent(u, Method::PATCH, &uri, id, Some(stolen)).await;
        let complete = format!("{uri}/complete");
        indistinguishable_from_absent(u, Method::POST, &complete, id, None).await;
        let reminder = format!("{uri}/reminder");
        let before = json!({"remind_before_minutes": 5});
        indistinguishable_from_absent(u, Method::PUT, &reminder, id, Some(before)).await;
        indistinguishable_from_absent(u, Method::DELETE, &uri, id, None).await;
    }
    for id in &categories {
        label_is_out_of_reach(u, "categories", id).await;
        if let Some(mine) = &own_task {
            let uri = format!("/api/v1/tasks/{mine}");
            let (status, _) = u
                .call(Method::PATCH, &uri, Some(json!({"category_id": id})))
                .await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "{}: another's category",
                u.name
            );
        }
        let filtered = format!("/api/v1/tasks?category_id={id}");
        let page = u.expect(
            "filter",
            u.call(Method::GET, &filtered, None).await,
            StatusCode::OK,
        );
        assert_eq!(
            page["total"], 0,
            "{}: filtered by another's category",
            u.name
        );
    }
    for id in &tags {
        label_is_out_of_reach(u, "tags", id).await;
        if let Some(mine) = &own_task {
            let uri = format!("/api/v1/tasks/{mine}/tags/{id}");
            let (status, _) = u.call(Method::POST, &uri, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{}: another's tag", u.name);
        }
        let search = format!("/api/v1/search?q=plan&tag_ids={id}");
        let page = u.expect(
            "search",
            u.call(Method::GET, &search, None).await,
            StatusCode::OK,
        );
        assert_eq!(page["total"], 0, "{}: searched by another's tag", u.name);
    }
}

/// Lists and searches hold exactly the user's own live rows.
async fn sees_only_own(u: &User, own: &Own) {
    let page = u.expect(
        "list",
        u.call(Method::GET, "/api/v1/tasks?limit=200", None).await,
        StatusCode::OK,
    );
    assert_eq!(ids(&page["items"]), own.tasks, "{}: list", u.name);
    assert_eq!(page["total"], own.tasks.len(), "{}: list total", u.name);
    // Every user's titles hold "plan"; only the user's own may come back.
    let found = u.expect(
        "search",
        u.call(Method::GET, "/api/v1/search?q=plan&limit=200", None)
            .await,
        StatusCode::OK,
    );
    assert_eq!(ids(&found["items"]), own.tasks, "{}: search", u.name);
    assert_eq!(found["total"], own.tasks.len(), "{}: search total", u.name);
    let done = u.expect(
        "completed",
        u.call(
            Method::GET,
            "/api/v1/tasks?status=completed&limit=200",
            None,
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(ids(&done["items"]), own.completed, "{}: completed", u.name);
    let categories = u.expect(
        "categories",
        u.call(Method::GET, "/api/v1/categories", None).await,
        StatusCode::OK,
    );
    assert_eq!(
        ids(&categories),
        BTreeSet::from([own.category.clone()]),
        "{}",
        u.name
    );
    let tags = u.expect(
        "tags",
        u.call(Method::GET, "/api/v1/tags", None).await,
        StatusCode::OK,
    );
    assert_eq!(ids(&tags), BTreeSet::from([own.tag.clone()]), "{}", u.name);
}

/// The same isolation seen through the MCP tools, on another replica of the router.
async fn mcp_sees_only_own(u: &User, mcp: &Client, me: usize, own: &Own, seen: &Mutex<Seen>) {
    // Claiming another user's id changes nothing: the token decides.
    let other = format!("user{}", (me + 1) % USERS);
    let listed = ok(
        mcp,
        "list_tasks",
        json!({"user_id": other, "status": "all", "limit": 200}),
    )
    .await;
    assert_eq!(
        ids(&listed["items"]),
        own.tasks,
        "{}: MCP list_tasks",
        u.name
    );
    let found = ok(mcp, "search_tasks", json!({"query": "plan", "limit": 200})).await;
    assert_eq!(
        ids(&found["items"]),
        own.tasks,
        "{}: MCP search_tasks",
        u.name
    );
    let others = Seen::others(&seen.lock().unwrap().tasks, me);
    for id in others {
        for (tool, args) in [
            ("get_task", json!({"task_id": id})),
            (
                "update_task",
                json!({"task_id": id, "title": "taken over MCP"}),
            ),
            ("complete_task", json!({"task_id": id})),
            ("delete_task", json!({"task_id": id})),
        ] {
            let refused = err(mcp, tool, args, "TASK_NOT_FOUND").await;
            // Suggestions are the caller's own tasks only.
            let suggested = ids(&refused["suggestions"]);
            assert!(suggested.is_subset(&own.tasks), "{}: {tool}", u.name);
        }
    }
}

/// One user's whole session; returns what its rows must be at the end.
async fn session(u: User, me: usize, seen: Arc<Mutex<Seen>>, mcp_url: String) -> Own {
    let mcp = connect(&mcp_url, u.token.clone()).await;
    // Every user picks the same label names: they are unique per user, not globally.
    let category = u
        .create("category", "/api/v1/categories", json!({"name": "Work"}))
        .await;
    seen.lock().unwrap().categories.push((me, category.clone()));
    let tag = u
        .create("tag", "/api/v1/tags", json!({"name": "urgent"}))
        .await;
    seen.lock().unwrap().tags.push((me, tag.clone()));
    let mut own = Own {
        category,
        tag,
        ..Own::default()
    };

    for k in 0..TASKS_PER_USER {
        let title = format!("plan {} {k}", u.name);
        let body = json!({"title": title, "description": "the shared plan",
                          "category_id": own.category, "tag_ids": [own.tag]});
        let id = u.create("create", "/api/v1/tasks", body).await;
        own.tasks.insert(id.clone());
        seen.lock().unwrap().tasks.push((me, id.clone()));
        let uri = format!("/api/v1/tasks/{id}");
        let title = if k % 2 == 0 {
            let title = format!("{title} revised");
            let patch = json!({"title": title});
            u.expect(
                "update",
                u.call(Method::PATCH, &uri, Some(patch)).await,
                StatusCode::OK,
            );
            title
        } else {
            title
        };
        if k % 3 == 0 {
            let uri = format!("{uri}/complete");
            u.expect(
                "complete",
                u.call(Method::POST, &uri, None).await,
                StatusCode::OK,
            );
            own.completed.insert(id.clone());
        }
        if k % 4 == 1 {
            u.expect(
                "delete",
                u.call(Method::DELETE, &uri, None).await,
                StatusCode::NO_CONTENT,
            );
            own.tasks.remove(&id);
        } else {
            own.titles.push((id, title));
        }
        attack(&u, me, &own, &seen).await;
        sees_only_own(&u, &own).await;
        mcp_sees_only_own(&u, &mcp, me, &own, &seen).await;
        // No other user's name finds anything.
        let other = format!("user{}", (me + 1 + k) % USERS);
        let found = u.expect(
            "search other",
            u.call(Method::GET, &format!("/api/v1/search?q={other}"), None)
                .await,
            StatusCode::OK,
        );
        assert_eq!(found["total"], 0, "{}: searched for {other}", u.name);
    }
    mcp.cancel().await.unwrap();
    own
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn concurrent_users_never_see_touch_or_detect_each_others_rows(pool: PgPool) {
    let state = support::app_state(pool.clone(), JWT_SECRET).await;
    let app = app::router(state, AppTokenLayer::new(None));
    let mcp_url = serve(pool.clone(), JWT_SECRET).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sessions: Vec<_> = (0..USERS)
        .map(|n| {
            let user = User::new(&app, n);
            tokio::spawn(session(user, n, Arc::clone(&seen), mcp_url.clone()))
        })
        .collect();
    let mut owns = Vec::new();
    for session in sessions {
        owns.push(session.await.unwrap());
    }

    // The database agrees: each user's rows are exactly what that user left.
    for (n, own) in owns.iter().enumerate() {
        let user = format!("user{n}");
        let rows: Vec<(Uuid, String, bool)> =
            sqlx::query_as("SELECT id, title, completed FROM tasks WHERE user_id = $1")
                .bind(&user)
                .fetch_all(&pool)
                .await
                .unwrap();
        let live: BTreeSet<String> = rows.iter().map(|(id, ..)| id.to_string()).collect();
        assert_eq!(live, own.tasks, "{user}: rows");
        for (id, title, completed) in &rows {
            let id = id.to_string();
            let want = own.titles.iter().find(|(t, _)| *t == id).map(|(_, t)| t);
            assert_eq!(Some(title), want, "{user}: title of {id}");
            assert_eq!(
                *completed,
                own.completed.contains(&id),
                "{user}: {id} completed"
            );
        }
        let labels: (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM categories WHERE user_id = $1 AND name = 'Work'),
                    (SELECT count(*) FROM tags WHERE user_id = $1 AND name = 'urgent')",
        )
        .bind(&user)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(labels, (1, 1), "{user}: labels untouched");
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks")
        .fetch_one(&pool)
        .await
        .unwrap();
    let expected: usize = owns.iter().map(|o| o.tasks.len()).sum();
    assert_eq!(usize::try_from(total).unwrap(), expected, "no stray rows");
    let attacked = seen.lock().unwrap().tasks.len();
    assert_eq!(
        attacked,
        USERS * TASKS_PER_USER,
        "every task was offered to attackers"
    );
}
