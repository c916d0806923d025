//! REST API tests against a real PostgreSQL: every `/api/v1` endpoint (happy path, other
//! users' data, bad input, auth), the OpenAPI document and the `/internal` routes.
//!
//! Each test gets a fresh database from `#[sqlx::test]` and drives the routers with
//! `tower::ServiceExt::oneshot`; tokens are minted here with a fixture HS256 key. Set
//! `DATABASE_URL` to a PostgreSQL server (e.g. the one `cargo xtask up` prints).

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use axum::Router;
use axum::body::Body;
use backend::app::AppState;
use backend::{internal, rest};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;

/// Test fixture only: the HS256 key these tests sign their tokens with.
const JWT_SECRET: &str = "fixture-rest-tests-hs256-key";

/// The routers under test, with tokens for two users.
struct Api {
    app: Router,
    state: AppState,
    pool: PgPool,
    alice: String,
    bob: String,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    #[track_caller]
    fn expect(self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        self.body
    }

    #[track_caller]
    fn expect_error(self, status: StatusCode, code: &str) -> Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.code(), code, "body: {}", self.body);
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "no message: {}",
            self.body
        );
        self.body
    }
}

fn token_for(sub: &str, email: Option<&str>, exp_offset_secs: i64) -> String {
    let exp = Utc::now().timestamp() + exp_offset_secs;
    let mut claims = json!({"sub": sub, "exp": exp, "name": format!("User {sub}")});
    if let Some(email) = email {
        claims["email"] = json!(email);
    }
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

impl Api {
    async fn new(pool: PgPool) -> Self {
        let state = support::app_state(pool.clone(), JWT_SECRET).await;
        let app = Router::new()
            .nest("/api/v1", rest::router(state.clone()))
            .nest("/internal", internal::router())
            .with_state(state.clone());
        Self {
            app,
            state,
            pool,
            alice: token_for("alice", Some("alice@example.com"), 3600),
            bob: token_for("bob", Some("bob@example.com"), 3600),
        }
    }

    async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{} answered non-JSON: {}",
                    parts.status,
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    async fn call(&self, token: &str, method: Method, uri: &str, body: Option<Value>) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    async fn get(&self, token: &str, uri: &str) -> Reply {
        self.call(token, Method::GET, uri, None).await
    }

    async fn post(&self, token: &str, uri: &str, body: Value) -> Reply {
        self.call(token, Method::POST, uri, Some(body)).await
    }

    async fn patch(&self, token: &str, uri: &str, body: Value) -> Reply {
        self.call(token, Method::PATCH, uri, Some(body)).await
    }

    async fn put(&self, token: &str, uri: &str, body: Value) -> Reply {
        self.call(token, Method::PUT, uri, Some(body)).await
    }

    async fn delete(&self, token: &str, uri: &str) -> Reply {
        self.call(token, Method::DELETE, uri, None).await
    }

    /// Posts `body` to `path` as `token`, which must answer 201; returns the new row.
    async fn create(&self, token: &str, path: &str, body: Value) -> Value {
        self.post(token, path, body)
            .await
            .expect(StatusCode::CREATED)
    }

    async fn create_task(&self, token: &str, body: Value) -> Value {
        self.create(token, "/api/v1/tasks", body).await
    }

    async fn create_category(&self, token: &str, name: &str) -> Value {
        let body = json!({"name": name, "color": "#112233"});
        self.create(token, "/api/v1/categories", body).await
    }

    async fn create_tag(&self, token: &str, name: &str) -> Value {
        self.create(token, "/api/v1/tags", json!({"name": name}))
            .await
    }
}

/// The label's colour is `want`, in whatever letter case the server keeps it.
#[track_caller]
fn assert_color(label: &Value, want: &str) {
    assert_eq!(
        label["color"].as_str().map(str::to_ascii_lowercase),
        Some(want.to_ascii_lowercase()),
        "{label}"
    );
}

impl Api {
    /// A name already taken (in another letter case) conflicts when Alice posts `create` to
    /// `path` and when she renames `uri` with `rename`.
    async fn expect_name_conflicts(&self, path: &str, create: Value, uri: &str, rename: Value) {
        self.post(&self.alice, path, create)
            .await
            .expect_error(StatusCode::CONFLICT, "CONFLICT");
        self.patch(&self.alice, uri, rename)
            .await
            .expect_error(StatusCode::CONFLICT, "CONFLICT");
    }

    /// Each body Alice posts to `path` is refused, naming the field it is paired with.
    async fn expect_invalid_fields(&self, path: &str, cases: Vec<(Value, &str)>) {
        for (body, field) in cases {
            let err = self
                .post(&self.alice, path, body.clone())
                .await
                .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
            assert_eq!(err["details"]["field"], field, "{body}");
        }
    }
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

fn titles(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.trunc_subsecs(0)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parse_time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------------------------

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn task_crud_happy_path(pool: PgPool) {
    let api = Api::new(pool).await;
    let due = Utc::now() + Duration::days(2);
    let task = api
        .create_task(
            &api.alice,
            json!({
                "title": "  Write the report  ",
                "description": "quarterly numbers",
                "priority": "high",
                "due_at": rfc3339(due),
                "recurrence_rule": "FREQ=WEEKLY;BYDAY=MO,FR",
            }),
        )
        .await;
    assert_eq!(task["title"], "Write the report");
    assert_eq!(task["description"], "quarterly numbers");
    assert_eq!(task["priority"], "high");
    assert_eq!(task["completed"], false);
    assert_eq!(task["completed_at"], Value::Null);
    assert_eq!(task["tags"], json!([]));
    assert_eq!(task["category"], Value::Null);
    assert_eq!(parse_time(&task["due_at"]), due.trunc_subsecs(0));
    assert!(
        task["recurrence_rule"]
            .as_str()
            .unwrap()
            .contains("FREQ=WEEKLY")
    );
    let uri = format!("/api/v1/tasks/{}", id(&task));

    let got = api.get(&api.alice, &uri).await.expect(StatusCode::OK);
    assert_eq!(got, task);

    // Defaults: medium priority, empty description.
    let plain = api.create_task(&api.alice, json!({"title": "plain"})).await;
    assert_eq!(plain["priority"], "medium");
    assert_eq!(plain["description"], "");

    // PATCH changes what is given; null clears.
    let patched = api
        .patch(
            &api.alice,
            &uri,
            json!({"title": "Write the final report", "priority": "urgent", "due_at": null, "recurrence_rule": null}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched["title"], "Write the final report");
    assert_eq!(patched["priority"], "urgent");
    assert_eq!(patched["due_at"], Value::Null);
    assert_eq!(patched["recurrence_rule"], Value::Null);
    assert_eq!(patched["description"], "quarterly numbers");

    // Complete, then reopen through PATCH.
    let done = api
        .call(&api.alice, Method::POST, &format!("{uri}/complete"), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(done["completed"], true);
    assert!(done["completed_at"].is_string());
    let again = api
        .call(&api.alice, Method::POST, &format!("{uri}/complete"), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(again["completed_at"], done["completed_at"]);
    let reopened = api
        .patch(&api.alice, &uri, json!({"completed": false}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(reopened["completed"], false);
    assert_eq!(reopened["completed_at"], Value::Null);

    // Delete: 204 with no body, then gone.
    let deleted = api.delete(&api.alice, &uri).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, Value::Null);
    let gone = api
        .get(&api.alice, &uri)
        .await
        .expect_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
    // The suggestions name recent pending tasks.
    let suggestions = gone["details"]["suggestions"].as_array().unwrap();
    assert!(suggestions.iter().any(|s| s["title"] == "plain"));
    api.delete(&api.alice, &uri)
        .await
        .expect_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn task_with_category_and_tags(pool: PgPool) {
    let api = Api::new(pool).await;
    let work = api.create_category(&api.alice, "Work").await;
    let urgent = api.create_tag(&api.alice, "urgent").await;
    let later = api.create_tag(&api.alice, "later").await;
    let task = api
        .create_task(
            &api.alice,
            json!({"title": "t", "category_id": id(&work), "tag_ids": [id(&urgent), id(&later), id(&urgent)]}),
        )
        .await;
    assert_eq!(task["category"]["id"], work["id"]);
    assert_eq!(task["category"]["name"], "Work");
    let tag_names: Vec<_> = task["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(tag_names, vec![json!("later"), json!("urgent")]);

    // Move to no category.
    let uri = format!("/api/v1/tasks/{}", id(&task));
    let moved = api
        .patch(&api.alice, &uri, json!({"category_id": null}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(moved["category"], Value::Null);
    assert_eq!(moved["tags"].as_array().unwrap().len(), 2);

    // Unknown category or tag: 404 NOT_FOUND.
    let nowhere = uuid::Uuid::now_v7();
    api.post(
        &api.alice,
        "/api/v1/tasks",
        json!({"title": "x", "category_id": nowhere}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.post(
        &api.alice,
        "/api/v1/tasks",
        json!({"title": "x", "tag_ids": [nowhere]}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.patch(&api.alice, &uri, json!({"category_id": nowhere}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn list_filters_sorts_and_pages(pool: PgPool) {
    let api = Api::new(pool).await;
    let home = api.create_category(&api.alice, "Home").await;
    let red = api.create_tag(&api.alice, "red").await;
    let blue = api.create_tag(&api.alice, "blue").await;
    let green = api.create_tag(&api.alice, "green").await;
    let now = Utc::now();
    let a = api
        .create_task(
            &api.alice,
            json!({"title": "a", "priority": "low", "due_at": rfc3339(now + Duration::days(3)), "tag_ids": [id(&red)]}),
        )
        .await;
    api.create_task(
        &api.alice,
        json!({"title": "b", "priority": "urgent", "due_at": rfc3339(now + Duration::days(1)), "category_id": id(&home), "tag_ids": [id(&blue)]}),
    )
    .await;
    api.create_task(
        &api.alice,
        json!({"title": "c", "priority": "high", "tag_ids": [id(&green)]}),
    )
    .await;
    api.create_task(
        &api.alice,
        json!({"title": "d", "priority": "medium", "due_at": rfc3339(now + Duration::days(2)), "category_id": id(&home)}),
    )
    .await;
    api.call(
        &api.alice,
        Method::POST,
        &format!("/api/v1/tasks/{}/complete", id(&a)),
        None,
    )
    .await
    .expect(StatusCode::OK);

    let list = |query: String| {
        let api = &api;
        async move { api.get(&api.alice, &format!("/api/v1/tasks{query}")).await }
    };

    let all = list(String::new()).await.expect(StatusCode::OK);
    assert_eq!(
        titles(&all),
        vec!["d", "c", "b", "a"],
        "newest first by default"
    );
    assert_eq!(all["total"], 4);
    assert_eq!(all["limit"], 50);
    assert_eq!(all["offset"], 0);

    let pending = list("?status=pending".into()).await.expect(StatusCode::OK);
    assert_eq!(titles(&pending), vec!["d", "c", "b"]);
    let completed = list("?status=completed".into())
        .await
        .expect(StatusCode::OK);
    assert_eq!(titles(&completed), vec!["a"]);
    let urgent = list("?priority=urgent".into()).await.expect(StatusCode::OK);
    assert_eq!(titles(&urgent), vec!["b"]);
    let in_home = list(format!("?category_id={}", id(&home)))
        .await
        .expect(StatusCode::OK);
    assert_eq!(titles(&in_home), vec!["d", "b"]);
    let any_tag = list(format!("?tag_ids={},{}", id(&red), id(&green)))
        .await
        .expect(StatusCode::OK);
    assert_eq!(titles(&any_tag), vec!["c", "a"]);

    let before = rfc3339(now + Duration::hours(60)).replace('+', "%2B");
    let due_soon = list(format!("?due_before={before}&sort_by=due"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(titles(&due_soon), vec!["b", "d"]);
    let after = rfc3339(now + Duration::hours(36));
    let due_late = list(format!("?due_after={after}&sort_by=due_date&order=desc"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(titles(&due_late), vec!["a", "d"]);

    let by_priority = list("?sort_by=priority".into())
        .await
        .expect(StatusCode::OK);
    assert_eq!(titles(&by_priority), vec!["b", "c", "d", "a"]);
    let by_priority_asc = list("?sort_by=priority&order=asc".into())
        .await
        .expect(StatusCode::OK);
    assert_eq!(titles(&by_priority_asc), vec!["a", "d", "c", "b"]);
    let oldest = list("?sort_by=created_at&order=asc".into())
        .await
        .expect(StatusCode::OK);
    assert_eq!(titles(&oldest), vec!["a", "b", "c", "d"]);
    let due_first = list("?sort_by=due".into()).await.expect(StatusCode::OK);
    assert_eq!(
        titles(&due_first),
        vec!["b", "d", "a", "c"],
        "no due date sorts last"
    );

    let page = list("?limit=2&offset=1".into())
        .await
        .expect(StatusCode::OK);
    assert_eq!(titles(&page), vec!["c", "b"]);
    assert_eq!(
        (
            page["total"].as_i64(),
            page["limit"].as_i64(),
            page["offset"].as_i64()
        ),
        (Some(4), Some(2), Some(1))
    );
    let clamped = list("?limit=1000".into()).await.expect(StatusCode::OK);
    assert_eq!(clamped["limit"], 200);

    for bad in [
        "?status=done",
        "?priority=critical",
        "?sort_by=title",
        "?order=up",
        "?limit=-1",
        "?limit=many",
        "?category_id=nope",
        "?tag_ids=nope",
        "?due_before=tomorrow",
    ] {
        list(bad.into())
            .await
            .expect_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    let inverted = format!(
        "?due_after={}&due_before={}",
        rfc3339(now + Duration::days(2)),
        rfc3339(now + Duration::days(1))
    );
    list(inverted)
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn search_finds_words_in_title_and_description(pool: PgPool) {
    let api = Api::new(pool).await;
    api.create_task(
        &api.alice,
        json!({"title": "Buy groceries", "description": "milk and bread"}),
    )
    .await;
    api.create_task(
        &api.alice,
        json!({"title": "Call the bakery", "description": "order bread"}),
    )
    .await;
    api.create_task(&api.alice, json!({"title": "Fix the bike"}))
        .await;
    api.create_task(&api.bob, json!({"title": "Bob's bread"}))
        .await;

    let bread = api
        .get(&api.alice, "/api/v1/search?q=bread")
        .await
        .expect(StatusCode::OK);
    assert_eq!(bread["total"], 2);
    let mut found = titles(&bread);
    found.sort_unstable();
    assert_eq!(found, vec!["Buy groceries", "Call the bakery"]);

    let groceries = api
        .get(&api.alice, "/api/v1/search?q=groceries")
        .await
        .expect(StatusCode::OK);
    assert_eq!(titles(&groceries), vec!["Buy groceries"]);
    let paged = api
        .get(&api.alice, "/api/v1/search?q=bread&limit=1&offset=1")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (
            paged["items"].as_array().unwrap().len(),
            paged["total"].as_i64()
        ),
        (1, Some(2))
    );
    let none = api
        .get(&api.alice, "/api/v1/search?q=piano")
        .await
        .expect(StatusCode::OK);
    assert_eq!(none["total"], 0);

    api.get(&api.alice, "/api/v1/search")
        .await
        .expect_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    api.get(&api.alice, "/api/v1/search?q=%20")
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
}

/// `GET /search` takes the same priority, category and tag filters as the `search_tasks` tool.
#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn search_narrows_by_priority_category_and_tags(pool: PgPool) {
    let api = Api::new(pool).await;
    let home = api.create_category(&api.alice, "Home").await;
    let red = api.create_tag(&api.alice, "red").await;
    let blue = api.create_tag(&api.alice, "blue").await;
    api.create_task(
        &api.alice,
        json!({"title": "bread a", "priority": "low", "category_id": id(&home), "tag_ids": [id(&red)]}),
    )
    .await;
    api.create_task(
        &api.alice,
        json!({"title": "bread b", "priority": "urgent", "category_id": id(&home), "tag_ids": [id(&blue)]}),
    )
    .await;
    api.create_task(
        &api.alice,
        json!({"title": "bread c", "priority": "urgent"}),
    )
    .await;
    api.create_task(
        &api.alice,
        json!({"title": "cake", "priority": "urgent", "category_id": id(&home), "tag_ids": [id(&red)]}),
    )
    .await;

    let search = |query: String| {
        let api = &api;
        async move {
            let page = api
                .get(&api.alice, &format!("/api/v1/search?q=bread{query}"))
                .await
                .expect(StatusCode::OK);
            let mut found: Vec<String> = titles(&page).into_iter().map(str::to_owned).collect();
            found.sort_unstable();
            found
        }
    };
    assert_eq!(
        search(String::new()).await,
        ["bread a", "bread b", "bread c"]
    );
    assert_eq!(
        search("&priority=urgent".into()).await,
        ["bread b", "bread c"]
    );
    assert_eq!(
        search(format!("&category_id={}", id(&home))).await,
        ["bread a", "bread b"]
    );
    assert_eq!(
        search(format!("&tag_ids={},{}", id(&red), id(&blue))).await,
        ["bread a", "bread b"]
    );
    assert_eq!(
        search(format!("&priority=urgent&tag_ids={}", id(&blue))).await,
        ["bread b"]
    );
    for bad in [
        "&priority=critical",
        "&category_id=nope",
        "&tag_ids=nope",
        "&offset=-1",
    ] {
        api.get(&api.alice, &format!("/api/v1/search?q=bread{bad}"))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn reminders_set_and_clear(pool: PgPool) {
    let api = Api::new(pool).await;
    let due = (Utc::now() + Duration::days(1)).trunc_subsecs(0);
    let task = api
        .create_task(
            &api.alice,
            json!({"title": "dentist", "due_at": rfc3339(due)}),
        )
        .await;
    let uri = format!("/api/v1/tasks/{}/reminder", id(&task));

    let before = api
        .put(&api.alice, &uri, json!({"remind_before_minutes": 60}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        parse_time(&before["remind_at"]),
        due - Duration::minutes(60)
    );

    let at = due - Duration::hours(3);
    let fixed = api
        .put(&api.alice, &uri, json!({"remind_at": rfc3339(at)}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(parse_time(&fixed["remind_at"]), at);

    let cleared = api.delete(&api.alice, &uri).await.expect(StatusCode::OK);
    assert_eq!(cleared["remind_at"], Value::Null);

    for (body, field) in [
        (
            json!({"remind_before_minutes": 5, "remind_at": rfc3339(at)}),
            "remind_at",
        ),
        (json!({}), "remind_at"),
        (
            json!({"remind_at": rfc3339(Utc::now() - Duration::hours(1))}),
            "remind_at",
        ),
        (
            json!({"remind_at": rfc3339(due + Duration::hours(1))}),
            "remind_at",
        ),
        (
            json!({"remind_before_minutes": 3 * 24 * 60}),
            "remind_before_minutes",
        ),
        (
            json!({"remind_before_minutes": -5}),
            "remind_before_minutes",
        ),
    ] {
        let err = api
            .put(&api.alice, &uri, body.clone())
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(err["details"]["field"], field, "{body}");
    }

    // Without a due time only `remind_at` works.
    let undated = api
        .create_task(&api.alice, json!({"title": "someday"}))
        .await;
    let undated_uri = format!("/api/v1/tasks/{}/reminder", id(&undated));
    api.put(
        &api.alice,
        &undated_uri,
        json!({"remind_before_minutes": 10}),
    )
    .await
    .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    api.put(
        &api.alice,
        &undated_uri,
        json!({"remind_at": rfc3339(Utc::now() + Duration::hours(2))}),
    )
    .await
    .expect(StatusCode::OK);

    // A reminder can also be given at creation, with the same rules.
    api.post(
        &api.alice,
        "/api/v1/tasks",
        json!({"title": "x", "due_at": rfc3339(due), "remind_at": rfc3339(due + Duration::minutes(1))}),
    )
    .await
    .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    api.post(
        &api.alice,
        "/api/v1/tasks",
        json!({"title": "x", "remind_at": rfc3339(Utc::now() - Duration::minutes(1))}),
    )
    .await
    .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");

    let missing = format!("/api/v1/tasks/{}/reminder", uuid::Uuid::now_v7());
    api.put(&api.alice, &missing, json!({"remind_before_minutes": 10}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
    api.delete(&api.alice, &missing)
        .await
        .expect_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn tags_on_a_task_and_the_ten_tag_limit(pool: PgPool) {
    let api = Api::new(pool).await;
    let mut tags = Vec::new();
    for i in 0..11 {
        tags.push(api.create_tag(&api.alice, &format!("t{i:02}")).await);
    }
    let ids: Vec<&str> = tags.iter().map(id).collect();

    api.post(
        &api.alice,
        "/api/v1/tasks",
        json!({"title": "x", "tag_ids": ids}),
    )
    .await
    .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "LIMIT_EXCEEDED");

    let task = api.create_task(&api.alice, json!({"title": "x"})).await;
    let tags_uri = |tag: &str| format!("/api/v1/tasks/{}/tags/{tag}", id(&task));
    for (n, tag) in ids.iter().take(10).enumerate() {
        let t = api
            .call(&api.alice, Method::POST, &tags_uri(tag), None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(t["tags"].as_array().unwrap().len(), n + 1);
    }
    // Adding one already there is a no-op.
    let same = api
        .call(&api.alice, Method::POST, &tags_uri(ids[0]), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(same["tags"].as_array().unwrap().len(), 10);
    api.call(&api.alice, Method::POST, &tags_uri(ids[10]), None)
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "LIMIT_EXCEEDED");

    let fewer = api
        .delete(&api.alice, &tags_uri(ids[0]))
        .await
        .expect(StatusCode::OK);
    assert_eq!(fewer["tags"].as_array().unwrap().len(), 9);
    assert!(
        fewer["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["id"] != ids[0])
    );

    let nowhere = uuid::Uuid::now_v7().to_string();
    api.call(&api.alice, Method::POST, &tags_uri(&nowhere), None)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.delete(&api.alice, &tags_uri(&nowhere))
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let no_task = format!("/api/v1/tasks/{}/tags/{}", uuid::Uuid::now_v7(), ids[1]);
    api.call(&api.alice, Method::POST, &no_task, None)
        .await
        .expect_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
}

// ---------------------------------------------------------------------------------------------
// Categories and tags
// ---------------------------------------------------------------------------------------------

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn categories_crud_conflicts_and_validation(pool: PgPool) {
    let api = Api::new(pool).await;
    let work = api
        .create(
            &api.alice,
            "/api/v1/categories",
            json!({"name": "Work", "color": "#a1b2c3"}),
        )
        .await;
    assert_eq!(work["name"], "Work");
    assert_color(&work, "#a1b2c3");
    assert_eq!(work["task_count"], 0);
    let home = api.create_category(&api.alice, "Home").await;
    api.create_task(&api.alice, json!({"title": "t", "category_id": id(&work)}))
        .await;

    let list = api
        .get(&api.alice, "/api/v1/categories")
        .await
        .expect(StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let work_listed = list.iter().find(|c| c["id"] == work["id"]).unwrap();
    assert_eq!(work_listed["task_count"], 1);

    // Duplicates (case-insensitive) conflict, on create and on rename.
    let home_uri = format!("/api/v1/categories/{}", id(&home));
    api.expect_name_conflicts(
        "/api/v1/categories",
        json!({"name": "work"}),
        &home_uri,
        json!({"name": "WORK"}),
    )
    .await;

    let renamed = api
        .patch(
            &api.alice,
            &home_uri,
            json!({"name": "House", "color": null}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(renamed["name"], "House");
    assert_eq!(renamed["color"], Value::Null);

    api.expect_invalid_fields(
        "/api/v1/categories",
        vec![
            (json!({"name": ""}), "name"),
            (json!({"name": "x".repeat(51)}), "name"),
            (json!({"name": "ok", "color": "red"}), "color"),
            (json!({"name": "ok", "color": "#12345"}), "color"),
        ],
    )
    .await;
    api.patch(&api.alice, &home_uri, json!({"color": "#GGGGGG"}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");

    // Deleting a category keeps its tasks.
    let work_uri = format!("/api/v1/categories/{}", id(&work));
    assert_eq!(
        api.delete(&api.alice, &work_uri).await.status,
        StatusCode::NO_CONTENT
    );
    let tasks = api
        .get(&api.alice, "/api/v1/tasks")
        .await
        .expect(StatusCode::OK);
    assert_eq!(tasks["total"], 1);
    assert_eq!(tasks["items"][0]["category"], Value::Null);
    api.delete(&api.alice, &work_uri)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.patch(&api.alice, &work_uri, json!({"name": "again"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn fifty_first_category_is_refused(pool: PgPool) {
    let api = Api::new(pool).await;
    for i in 0..50 {
        api.create_category(&api.alice, &format!("c{i}")).await;
    }
    api.post(
        &api.alice,
        "/api/v1/categories",
        json!({"name": "one too many"}),
    )
    .await
    .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "LIMIT_EXCEEDED");
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn tags_crud_conflicts_and_validation(pool: PgPool) {
    let api = Api::new(pool).await;
    let red = api
        .create(
            &api.alice,
            "/api/v1/tags",
            json!({"name": "red", "color": "#FF0000"}),
        )
        .await;
    assert_eq!(red["name"], "red");
    let blue = api.create_tag(&api.alice, "blue").await;
    let task = api
        .create_task(
            &api.alice,
            json!({"title": "t", "tag_ids": [id(&red), id(&blue)]}),
        )
        .await;

    let list = api
        .get(&api.alice, "/api/v1/tags")
        .await
        .expect(StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|t| t["task_count"] == 1));

    let blue_uri = format!("/api/v1/tags/{}", id(&blue));
    api.expect_name_conflicts(
        "/api/v1/tags",
        json!({"name": "RED"}),
        &blue_uri,
        json!({"name": "Red"}),
    )
    .await;
    let navy = api
        .patch(
            &api.alice,
            &blue_uri,
            json!({"name": "navy", "color": "#000080"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(navy["name"], "navy");
    assert_color(&navy, "#000080");

    api.expect_invalid_fields(
        "/api/v1/tags",
        vec![
            (json!({"name": "  "}), "name"),
            (json!({"name": "x".repeat(31)}), "name"),
            (json!({"name": "ok", "color": "#12345G"}), "color"),
        ],
    )
    .await;

    // Deleting a tag takes it off its tasks.
    let red_uri = format!("/api/v1/tags/{}", id(&red));
    assert_eq!(
        api.delete(&api.alice, &red_uri).await.status,
        StatusCode::NO_CONTENT
    );
    let t = api
        .get(&api.alice, &format!("/api/v1/tasks/{}", id(&task)))
        .await
        .expect(StatusCode::OK);
    let names: Vec<_> = t["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("navy")]);
    api.delete(&api.alice, &red_uri)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

// ---------------------------------------------------------------------------------------------
// Another user's data
// ---------------------------------------------------------------------------------------------

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn other_users_data_is_invisible(pool: PgPool) {
    let api = Api::new(pool).await;
    let cat = api.create_category(&api.alice, "Private").await;
    let tag = api.create_tag(&api.alice, "secret").await;
    let due = Utc::now() + Duration::days(1);
    let task = api
        .create_task(
            &api.alice,
            json!({"title": "alice's plan", "due_at": rfc3339(due), "category_id": id(&cat), "tag_ids": [id(&tag)]}),
        )
        .await;
    let task_uri = format!("/api/v1/tasks/{}", id(&task));
    let bob = &api.bob;

    // Every route on Alice's task answers 404 to Bob, and suggests none of Alice's tasks.
    let err = api
        .get(bob, &task_uri)
        .await
        .expect_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
    assert!(!err.to_string().contains("alice's plan"));
    api.patch(bob, &task_uri, json!({"title": "mine now"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
    api.call(bob, Method::POST, &format!("{task_uri}/complete"), None)
        .await
        .expect_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
    api.put(
        bob,
        &format!("{task_uri}/reminder"),
        json!({"remind_before_minutes": 5}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
    api.delete(bob, &format!("{task_uri}/reminder"))
        .await
        .expect_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
    api.delete(bob, &task_uri)
        .await
        .expect_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");

    // Alice's labels do not exist for Bob.
    let cat_uri = format!("/api/v1/categories/{}", id(&cat));
    let tag_uri = format!("/api/v1/tags/{}", id(&tag));
    api.patch(bob, &cat_uri, json!({"name": "taken"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.delete(bob, &cat_uri)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.patch(bob, &tag_uri, json!({"name": "taken"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.delete(bob, &tag_uri)
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");

    // Bob cannot use Alice's labels on his own tasks, nor touch tags on Alice's task.
    api.post(
        bob,
        "/api/v1/tasks",
        json!({"title": "x", "category_id": id(&cat)}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.post(
        bob,
        "/api/v1/tasks",
        json!({"title": "x", "tag_ids": [id(&tag)]}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let bobs = api.create_task(bob, json!({"title": "bob's task"})).await;
    let bobs_uri = format!("/api/v1/tasks/{}", id(&bobs));
    api.call(
        bob,
        Method::POST,
        &format!("{bobs_uri}/tags/{}", id(&tag)),
        None,
    )
    .await
    .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.patch(bob, &bobs_uri, json!({"category_id": id(&cat)}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let bob_tag = api.create_tag(bob, "secret").await; // same name, other user: fine
    api.call(
        bob,
        Method::POST,
        &format!("{task_uri}/tags/{}", id(&bob_tag)),
        None,
    )
    .await
    .expect(StatusCode::NOT_FOUND);
    api.delete(bob, &format!("{task_uri}/tags/{}", id(&tag)))
        .await
        .expect(StatusCode::NOT_FOUND);
    api.create_category(bob, "Private").await;

    // Listings never show Alice's data.
    let tasks = api.get(bob, "/api/v1/tasks").await.expect(StatusCode::OK);
    assert_eq!(titles(&tasks), vec!["bob's task"]);
    assert_eq!(tasks["total"], 1);
    let filtered = api
        .get(
            bob,
            &format!(
                "/api/v1/tasks?category_id={}&tag_ids={}",
                id(&cat),
                id(&tag)
            ),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(filtered["total"], 0);
    let found = api
        .get(bob, "/api/v1/search?q=plan")
        .await
        .expect(StatusCode::OK);
    assert_eq!(found["total"], 0);
    let cats = api
        .get(bob, "/api/v1/categories")
        .await
        .expect(StatusCode::OK);
    assert_eq!(cats.as_array().unwrap().len(), 1);
    assert_ne!(cats[0]["id"], cat["id"]);
    let tags = api.get(bob, "/api/v1/tags").await.expect(StatusCode::OK);
    assert_eq!(tags.as_array().unwrap().len(), 1);
    assert_ne!(tags[0]["id"], tag["id"]);

    // Alice's task is untouched.
    let still = api.get(&api.alice, &task_uri).await.expect(StatusCode::OK);
    assert_eq!(still, task);
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn task_validation_errors_name_the_field(pool: PgPool) {
    let api = Api::new(pool).await;
    for (body, field) in [
        (json!({"title": ""}), "title"),
        (json!({"title": "   "}), "title"),
        (json!({"title": "x".repeat(201)}), "title"),
        (
            json!({"title": "ok", "recurrence_rule": "FREQ=HOURLY"}),
            "recurrence_rule",
        ),
        (
            json!({"title": "ok", "recurrence_rule": "nonsense"}),
            "recurrence_rule",
        ),
    ] {
        let err = api
            .post(&api.alice, "/api/v1/tasks", body.clone())
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(err["details"]["field"], field, "{body}");
    }
    // 200 characters is fine.
    api.create_task(&api.alice, json!({"title": "x".repeat(200)}))
        .await;

    let task = api.create_task(&api.alice, json!({"title": "ok"})).await;
    let uri = format!("/api/v1/tasks/{}", id(&task));
    let err = api
        .patch(&api.alice, &uri, json!({"title": "y".repeat(201)}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    assert_eq!(err["details"]["field"], "title");
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn unreadable_requests_answer_400_json(pool: PgPool) {
    let api = Api::new(pool).await;
    let task = api.create_task(&api.alice, json!({"title": "ok"})).await;
    let auth = format!("Bearer {}", api.alice);
    let raw = |method: Method, uri: &str, content_type: Option<&str>, body: &'static str| {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, &auth);
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(Body::from(body)).unwrap()
    };

    let json_ct = Some("application/json");
    for req in [
        raw(Method::POST, "/api/v1/tasks", json_ct, "{\"title\": "),
        raw(Method::POST, "/api/v1/tasks", json_ct, "not json"),
        raw(Method::POST, "/api/v1/tasks", None, "{\"title\": \"x\"}"),
        raw(
            Method::POST,
            "/api/v1/tasks",
            Some("text/plain"),
            "{\"title\": \"x\"}",
        ),
        raw(Method::POST, "/api/v1/tasks", json_ct, "{}"),
        raw(Method::POST, "/api/v1/tasks", json_ct, "{\"title\": 5}"),
        raw(
            Method::POST,
            "/api/v1/tasks",
            json_ct,
            "{\"title\": \"x\", \"priority\": \"asap\"}",
        ),
        raw(
            Method::POST,
            "/api/v1/tasks",
            json_ct,
            "{\"title\": \"x\", \"due_at\": \"next week\"}",
        ),
        raw(Method::POST, "/api/v1/categories", json_ct, "[1, 2]"),
        raw(
            Method::PATCH,
            &format!("/api/v1/tasks/{}", id(&task)),
            json_ct,
            "{\"completed\": \"yes\"}",
        ),
        raw(Method::GET, "/api/v1/tasks/not-a-uuid", None, ""),
        raw(Method::DELETE, "/api/v1/tasks/123", None, ""),
        raw(Method::POST, "/api/v1/tasks/not-a-uuid/complete", None, ""),
        raw(
            Method::POST,
            &format!("/api/v1/tasks/{}/tags/xyz", id(&task)),
            None,
            "",
        ),
        raw(Method::PATCH, "/api/v1/categories/nope", json_ct, "{}"),
        raw(Method::DELETE, "/api/v1/tags/nope", None, ""),
    ] {
        let what = format!("{} {}", req.method(), req.uri());
        let reply = api.send(req).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            reply.body
        );
        assert_eq!(reply.code(), "BAD_REQUEST", "{what}");
        assert!(reply.body["message"].is_string(), "{what}");
    }

    // Unknown routes and methods answer JSON too.
    api.get(&api.alice, "/api/v1/nothing-here")
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let res = api
        .send(
            Request::get("/api/v1/nothing-here")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::NOT_FOUND,
        "unknown routes do not ask for a token"
    );
    api.call(&api.alice, Method::PUT, "/api/v1/tasks", Some(json!({})))
        .await
        .expect_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
}

// ---------------------------------------------------------------------------------------------
// Input the database would refuse, and loose request shapes (issue 9)
// ---------------------------------------------------------------------------------------------

async fn task_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tasks")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn nul_in_any_text_field_answers_422_naming_it(pool: PgPool) {
    let api = Api::new(pool).await;
    let due = rfc3339(Utc::now() + Duration::days(1));
    let task = api.create_task(&api.alice, json!({"title": "ok"})).await;
    let category = api.create_category(&api.alice, "Work").await;
    let tag = api.create_tag(&api.alice, "errand").await;
    let before = task_count(&api.pool).await;
    let nul = "a\u{0}b";
    let task_uri = format!("/api/v1/tasks/{}", id(&task));
    let category_uri = format!("/api/v1/categories/{}", id(&category));
    let tag_uri = format!("/api/v1/tags/{}", id(&tag));
    let cases = [
        (
            Method::POST,
            "/api/v1/tasks",
            json!({"title": nul}),
            "title",
        ),
        (
            Method::POST,
            "/api/v1/tasks",
            json!({"title": "ok", "description": nul}),
            "description",
        ),
        (
            Method::POST,
            "/api/v1/tasks",
            json!({"title": "ok", "description": "escape \u{1b}[2J"}),
            "description",
        ),
        (
            Method::POST,
            "/api/v1/tasks",
            json!({"title": "ok", "due_at": due, "recurrence_rule": format!("FREQ=DAILY{nul}")}),
            "recurrence_rule",
        ),
        (
            Method::PATCH,
            task_uri.as_str(),
            json!({"title": nul}),
            "title",
        ),
        (
            Method::PATCH,
            task_uri.as_str(),
            json!({"description": nul}),
            "description",
        ),
        (
            Method::PATCH,
            task_uri.as_str(),
            json!({"due_at": due, "recurrence_rule": nul}),
            "recurrence_rule",
        ),
        (
            Method::POST,
            "/api/v1/categories",
            json!({"name": nul}),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/categories",
            json!({"name": "x", "color": "#00000\u{0}"}),
            "color",
        ),
        (
            Method::PATCH,
            category_uri.as_str(),
            json!({"name": nul}),
            "name",
        ),
        (
            Method::PATCH,
            category_uri.as_str(),
            json!({"color": "#\u{0}00000"}),
            "color",
        ),
        (Method::POST, "/api/v1/tags", json!({"name": nul}), "name"),
        (
            Method::POST,
            "/api/v1/tags",
            json!({"name": "x", "color": "\u{0}"}),
            "color",
        ),
        (
            Method::PATCH,
            tag_uri.as_str(),
            json!({"name": nul}),
            "name",
        ),
        (
            Method::PATCH,
            tag_uri.as_str(),
            json!({"color": nul}),
            "color",
        ),
    ];
    for (method, uri, body, field) in cases {
        let what = format!("{method} {uri} {body}");
        let err = api
            .call(&api.alice, method, uri, Some(body))
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(err["details"]["field"], field, "{what}");
    }
    // The search query, where REST calls it `q`.
    let err = api
        .get(&api.alice, "/api/v1/search?q=a%00b")
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    assert_eq!(err["details"]["field"], "q");
    // A lone surrogate is no JSON string at all.
    let reply = api
        .send(
            Request::post("/api/v1/tasks")
                .header(header::AUTHORIZATION, format!("Bearer {}", api.alice))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"title": "\ud800"}"#))
                .unwrap(),
        )
        .await;
    reply.expect_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    assert_eq!(task_count(&api.pool).await, before);
    let unchanged = api.get(&api.alice, &task_uri).await.expect(StatusCode::OK);
    assert_eq!(unchanged, task);
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn numbers_paths_and_times_at_their_limits_never_answer_500(pool: PgPool) {
    let api = Api::new(pool).await;
    let due = Utc::now() + Duration::days(1);
    let task = api
        .create_task(
            &api.alice,
            json!({"title": "limits", "due_at": rfc3339(due)}),
        )
        .await;
    // Page numbers: all of u32 is accepted (bound as bigint), anything beyond is a bad query.
    for uri in [
        "/api/v1/tasks?offset=4294967295&limit=4294967295",
        "/api/v1/search?q=limits&offset=4294967295&limit=4294967295",
    ] {
        let page = api.get(&api.alice, uri).await.expect(StatusCode::OK);
        assert_eq!(page["items"], json!([]), "{uri}");
        assert_eq!(page["limit"], 200, "{uri}");
    }
    for uri in [
        "/api/v1/tasks?offset=4294967296",
        "/api/v1/tasks?limit=-1",
        "/api/v1/tasks?offset=1e3",
        "/api/v1/search?q=x&offset=99999999999999999999",
        "/api/v1/tasks?due_before=yesterday",
        "/api/v1/tasks?category_id=%00",
        "/api/v1/tasks?tag_ids=%00",
        "/api/v1/tasks?status=%00",
    ] {
        api.get(&api.alice, uri)
            .await
            .expect_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    for (uri, field) in [
        (
            "/api/v1/tasks?due_before=0000-01-01T00:00:00Z",
            "due_before",
        ),
        // chrono reads signed five-digit years; PostgreSQL stops at 4713 BC.
        (
            "/api/v1/tasks?due_before=-5000-01-01T00:00:00Z",
            "due_before",
        ),
        (
            "/api/v1/tasks?due_before=%2B10000-01-01T00:00:00Z",
            "due_before",
        ),
        ("/api/v1/tasks?due_after=1969-12-31T23:59:59Z", "due_after"),
        (
            "/api/v1/tasks?due_after=9999-12-31T23:59:59-01:00",
            "due_after",
        ),
    ] {
        let err = api
            .get(&api.alice, uri)
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(err["details"]["field"], field, "{uri}");
    }
    // Path parameters that are no UUID, NUL included.
    for uri in [
        "/api/v1/tasks/%00",
        "/api/v1/categories/%00",
        "/api/v1/tags/a%00b",
    ] {
        let reply = api.delete(&api.alice, uri).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{uri}: {}",
            reply.body
        );
    }
    // remind_before_minutes beyond u32, negative, fractional or huge.
    let reminder = format!("/api/v1/tasks/{}/reminder", id(&task));
    for minutes in [
        json!(4_294_967_296_i64),
        json!(-1),
        json!(4_294_967_295_u32),
    ] {
        let err = api
            .put(
                &api.alice,
                &reminder,
                json!({"remind_before_minutes": minutes}),
            )
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(
            err["details"]["field"], "remind_before_minutes",
            "{minutes}"
        );
    }
    for minutes in [json!(1.5), json!(1e30), json!("60")] {
        api.put(
            &api.alice,
            &reminder,
            json!({"remind_before_minutes": minutes}),
        )
        .await
        .expect_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    // Timestamps in bodies: the same 1970..=9999 range everywhere.
    let task_uri = format!("/api/v1/tasks/{}", id(&task));
    for (method, uri, body, field) in [
        (
            Method::POST,
            "/api/v1/tasks",
            json!({"title": "t", "due_at": "0000-01-01T00:00:00Z"}),
            "due_at",
        ),
        (
            Method::POST,
            "/api/v1/tasks",
            json!({"title": "t", "due_at": "-5000-01-01T00:00:00Z"}),
            "due_at",
        ),
        (
            Method::POST,
            "/api/v1/tasks",
            json!({"title": "t", "remind_at": "9999-12-31T23:59:59-05:00"}),
            "remind_at",
        ),
        (
            Method::PATCH,
            task_uri.as_str(),
            json!({"due_at": "0001-01-01T00:00:00Z"}),
            "due_at",
        ),
        (
            Method::PATCH,
            task_uri.as_str(),
            json!({"remind_at": "1900-01-01T00:00:00Z"}),
            "remind_at",
        ),
        (
            Method::PUT,
            reminder.as_str(),
            json!({"remind_at": "0000-06-01T00:00:00+01:00"}),
            "remind_at",
        ),
    ] {
        let what = format!("{method} {uri} {body}");
        let err = api
            .call(&api.alice, method, uri, Some(body))
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(err["details"]["field"], field, "{what}");
    }
    let far = api
        .create_task(
            &api.alice,
            json!({"title": "far", "due_at": "9999-12-31T23:59:59Z"}),
        )
        .await;
    assert_eq!(far["due_at"], "9999-12-31T23:59:59Z");
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn bodies_must_be_json_objects(pool: PgPool) {
    let api = Api::new(pool).await;
    let task = api.create_task(&api.alice, json!({"title": "ok"})).await;
    let category = api.create_category(&api.alice, "Work").await;
    let tag = api.create_tag(&api.alice, "errand").await;
    let before = task_count(&api.pool).await;
    let task_uri = format!("/api/v1/tasks/{}", id(&task));
    let reminder_uri = format!("{task_uri}/reminder");
    let category_uri = format!("/api/v1/categories/{}", id(&category));
    let tag_uri = format!("/api/v1/tags/{}", id(&tag));
    for (method, uri, body) in [
        (Method::POST, "/api/v1/tasks", json!(["x"])),
        (Method::POST, "/api/v1/tasks", json!(["t", "d", "urgent"])),
        (Method::POST, "/api/v1/tasks", json!("x")),
        (Method::POST, "/api/v1/tasks", json!(null)),
        (Method::PATCH, task_uri.as_str(), json!(["renamed"])),
        (Method::PUT, reminder_uri.as_str(), json!([60])),
        (Method::POST, "/api/v1/categories", json!(["Home"])),
        (Method::PATCH, category_uri.as_str(), json!(["Home"])),
        (Method::POST, "/api/v1/tags", json!(["x", "#000000"])),
        (Method::PATCH, tag_uri.as_str(), json!(42)),
    ] {
        let what = format!("{method} {uri} {body}");
        let err = api
            .call(&api.alice, method, uri, Some(body))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
        let message = err["message"].as_str().unwrap();
        assert!(
            message.contains("must be a JSON object"),
            "{what}: {message}"
        );
    }
    assert_eq!(task_count(&api.pool).await, before);
    assert_eq!(
        api.get(&api.alice, &task_uri).await.expect(StatusCode::OK),
        task
    );
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn unknown_fields_and_query_keys_are_refused_by_name(pool: PgPool) {
    let api = Api::new(pool).await;
    let task = api.create_task(&api.alice, json!({"title": "ok"})).await;
    let before = task_count(&api.pool).await;
    let due = rfc3339(Utc::now() + Duration::days(1));
    let task_uri = format!("/api/v1/tasks/{}", id(&task));
    let reminder_uri = format!("{task_uri}/reminder");
    // The MCP name of due_at: named, with the REST spelling.
    for (method, uri) in [
        (Method::POST, "/api/v1/tasks"),
        (Method::PATCH, task_uri.as_str()),
    ] {
        let err = api
            .call(
                &api.alice,
                method,
                uri,
                Some(json!({"title": "Pay rent", "due_date": due})),
            )
            .await
            .expect_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
        let message = err["message"].as_str().unwrap();
        assert!(message.contains("unknown field `due_date`"), "{message}");
        assert!(message.contains("`due_at`"), "{message}");
    }
    for (method, uri, body, field) in [
        (
            Method::POST,
            "/api/v1/tasks",
            json!({"title": "x", "user_id": "bob"}),
            "user_id",
        ),
        (
            Method::PATCH,
            task_uri.as_str(),
            json!({"tags": []}),
            "tags",
        ),
        (
            Method::PUT,
            reminder_uri.as_str(),
            json!({"remind_before_minutes": 5, "minutes": 5}),
            "minutes",
        ),
        (
            Method::POST,
            "/api/v1/categories",
            json!({"name": "x", "colour": "#000000"}),
            "colour",
        ),
        (
            Method::POST,
            "/api/v1/tags",
            json!({"name": "x", "description": "y"}),
            "description",
        ),
    ] {
        let err = api
            .call(&api.alice, method, uri, Some(body))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
        let message = err["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("unknown field `{field}`")),
            "{message}"
        );
    }
    assert_eq!(task_count(&api.pool).await, before);
    assert_eq!(
        api.get(&api.alice, &task_uri).await.expect(StatusCode::OK),
        task
    );

    // Query strings too: a misspelt filter does not silently list everything.
    let err = api
        .get(&api.alice, "/api/v1/tasks?statuss=pending")
        .await
        .expect_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `statuss`"),
        "{err}"
    );
    let err = api
        .get(&api.alice, "/api/v1/search?query=milk")
        .await
        .expect_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("unknown field `query`"), "{message}");
    assert!(message.contains("calls it `q`"), "{message}");
    api.get(&api.alice, "/api/v1/tasks?status=pending&sort_by=due")
        .await
        .expect(StatusCode::OK);
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn recurring_tasks_need_a_due_date(pool: PgPool) {
    let api = Api::new(pool).await;
    let due = rfc3339(Utc::now() + Duration::days(1));
    let err = api
        .post(
            &api.alice,
            "/api/v1/tasks",
            json!({"title": "gym", "recurrence_rule": "FREQ=DAILY"}),
        )
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    assert_eq!(err["details"]["field"], "due_at");
    let recurring = api
        .create_task(
            &api.alice,
            json!({"title": "gym", "due_at": due, "recurrence_rule": "FREQ=DAILY"}),
        )
        .await;
    let plain = api.create_task(&api.alice, json!({"title": "plain"})).await;
    for (task, body) in [
        (&recurring, json!({"due_at": null})),
        (&plain, json!({"recurrence_rule": "FREQ=WEEKLY"})),
    ] {
        let err = api
            .patch(&api.alice, &format!("/api/v1/tasks/{}", id(task)), body)
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(err["details"]["field"], "due_at");
    }
    let now_recurring = api
        .patch(
            &api.alice,
            &format!("/api/v1/tasks/{}", id(&plain)),
            json!({"recurrence_rule": "FREQ=WEEKLY", "due_at": due}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(now_recurring["recurrence_rule"], "FREQ=WEEKLY");
}

// ---------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn requests_without_a_valid_token_answer_401(pool: PgPool) {
    let api = Api::new(pool).await;
    let exp = Utc::now().timestamp() + 3600;
    let wrong_key = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "mallory", "exp": exp}),
        &EncodingKey::from_secret(b"not-the-server-key"),
    )
    .unwrap();
    let wrong_alg = encode(
        &Header::new(Algorithm::HS512),
        &json!({"sub": "mallory", "exp": exp}),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    // An unsigned token (`alg: none`) must never pass.
    let unsigned = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(json!({"sub": "mallory", "exp": exp}).to_string())
        )
    };
    let no_sub = encode(
        &Header::new(Algorithm::HS256),
        &json!({"exp": exp}),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let expired = token_for("alice", None, -3600);
    // A subject PostgreSQL would refuse (NUL) or with other control characters is no user.
    let nul_sub = token_for("mal\u{0}lory", None, 3600);
    let newline_sub = token_for("mal\nlory", None, 3600);

    let headers: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some(format!("Basic {}", api.alice)),
        Some(api.alice.clone()),
        Some("Bearer not.a.jwt".to_owned()),
        Some(format!("Bearer {expired}")),
        Some(format!("Bearer {wrong_key}")),
        Some(format!("Bearer {wrong_alg}")),
        Some(format!("Bearer {unsigned}")),
        Some(format!("Bearer {no_sub}")),
        Some(format!("Bearer {nul_sub}")),
        Some(format!("Bearer {newline_sub}")),
    ];
    for (i, value) in headers.into_iter().enumerate() {
        for (method, uri) in [
            (Method::GET, "/api/v1/tasks".to_owned()),
            (Method::POST, "/api/v1/tasks".to_owned()),
            (
                Method::GET,
                format!("/api/v1/tasks/{}", uuid::Uuid::now_v7()),
            ),
            (Method::GET, "/api/v1/categories".to_owned()),
            (Method::GET, "/api/v1/tags".to_owned()),
            (Method::GET, "/api/v1/search?q=x".to_owned()),
        ] {
            let mut req = Request::builder().method(method.clone()).uri(&uri);
            if let Some(v) = &value {
                req = req.header(header::AUTHORIZATION, v);
            }
            let reply = api.send(req.body(Body::empty()).unwrap()).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "case {i}: {method} {uri}"
            );
            assert_eq!(reply.code(), "UNAUTHORIZED", "case {i}");
            assert!(
                reply.headers[header::WWW_AUTHENTICATE]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer"),
                "case {i}"
            );
        }
    }
    let reply = api
        .send(
            Request::get("/api/v1/tasks")
                .header(header::AUTHORIZATION, format!("Bearer {expired}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.body["message"], "token expired");

    // Nothing was written for the rejected callers.
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn authenticated_users_are_recorded_with_their_email(pool: PgPool) {
    let api = Api::new(pool).await;
    api.get(&api.alice, "/api/v1/tasks")
        .await
        .expect(StatusCode::OK);
    let (email, name): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT email, display_name FROM users WHERE id = 'alice'")
            .fetch_one(&api.pool)
            .await
            .unwrap();
    assert_eq!(email.as_deref(), Some("alice@example.com"));
    assert_eq!(name.as_deref(), Some("User alice"));

    // A changed email claim is written on the next request, without waiting a minute.
    let renamed = token_for("alice", Some("alice@new.example"), 3600);
    api.get(&renamed, "/api/v1/tags")
        .await
        .expect(StatusCode::OK);
    let email: Option<String> = sqlx::query_scalar("SELECT email FROM users WHERE id = 'alice'")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(email.as_deref(), Some("alice@new.example"));

    // Contact claims with control characters never reach the database: treated as absent.
    let odd = token_for("carol", Some("carol\u{0}@example.com"), 3600);
    api.get(&odd, "/api/v1/tasks").await.expect(StatusCode::OK);
    let email: Option<String> = sqlx::query_scalar("SELECT email FROM users WHERE id = 'carol'")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(email, None);
}

// ---------------------------------------------------------------------------------------------
// OpenAPI
// ---------------------------------------------------------------------------------------------

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn openapi_document_is_public_and_lists_every_route(pool: PgPool) {
    let api = Api::new(pool).await;
    let doc = api
        .send(
            Request::get("/api/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .expect(StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let expected: &[(&str, &[&str])] = &[
        ("/tasks", &["get", "post"]),
        ("/tasks/{id}", &["delete", "get", "patch"]),
        ("/tasks/{id}/complete", &["post"]),
        ("/tasks/{id}/reminder", &["delete", "put"]),
        ("/tasks/{id}/tags/{tag_id}", &["delete", "post"]),
        ("/search", &["get"]),
        ("/categories", &["get", "post"]),
        ("/categories/{id}", &["delete", "patch"]),
        ("/tags", &["get", "post"]),
        ("/tags/{id}", &["delete", "patch"]),
        ("/openapi.json", &["get"]),
    ];
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(
        paths.len(),
        expected.len(),
        "paths: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
    for (path, methods) in expected {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} missing"))
            .as_object()
            .unwrap();
        let mut got: Vec<&str> = item
            .keys()
            .map(String::as_str)
            .filter(|k| ["get", "post", "put", "patch", "delete"].contains(k))
            .collect();
        got.sort_unstable();
        assert_eq!(got, *methods, "{path}");
    }
    // Every route the document names exists in the router (a request does not fall through to
    // the 404 fallback) and, except the document itself, demands a token.
    for (path, methods) in expected {
        let concrete = path
            .replace("{id}", &uuid::Uuid::nil().to_string())
            .replace("{tag_id}", &uuid::Uuid::nil().to_string());
        for method in *methods {
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let reply = api
                .send(
                    Request::builder()
                        .method(method.clone())
                        .uri(format!("/api/v1{concrete}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await;
            let want = if *path == "/openapi.json" {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(reply.status, want, "{method} {path}");
        }
    }
    let schemes = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(schemes["type"], "http");
    assert_eq!(schemes["scheme"], "bearer");
    assert_eq!(doc["security"][0]["bearer"], json!([]));
    assert_eq!(paths["/openapi.json"]["get"]["security"], json!([{}]));
    for schema in [
        "Task",
        "Category",
        "Tag",
        "NewTask",
        "TaskPatch",
        "Error",
        "Priority",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
    // Request bodies say that they take no other fields.
    for schema in [
        "NewTask",
        "TaskPatch",
        "NewCategory",
        "CategoryPatch",
        "NewTag",
        "TagPatch",
    ] {
        assert_eq!(
            doc["components"]["schemas"][schema]["additionalProperties"], false,
            "{schema}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Internal routes
// ---------------------------------------------------------------------------------------------

/// `GET /internal/reminders` (notification's sweep): the pending tasks of every user whose
/// reminder is in the window, in reminder order, a page at a time with a cursor.
#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn internal_reminders_page_through_the_window(pool: PgPool) {
    let api = Api::new(pool).await;
    let now = Utc::now().trunc_subsecs(0);
    let due = now + Duration::days(1);
    let mut want = Vec::new();
    for (user, minutes) in [
        (&api.alice, 30),
        (&api.bob, 10),
        (&api.alice, 20),
        (&api.bob, 40),
    ] {
        let task = api
            .create_task(
                user,
                json!({"title": format!("in {minutes} min"), "due_at": rfc3339(due),
                       "remind_at": rfc3339(now + Duration::minutes(minutes))}),
            )
            .await;
        want.push((minutes, id(&task).to_owned()));
    }
    want.sort();
    // Outside the window, or done: never asked for.
    api.create_task(
        &api.alice,
        json!({"title": "later", "due_at": rfc3339(due), "remind_at": rfc3339(now + Duration::hours(3))}),
    )
    .await;
    let done = api
        .create_task(
            &api.alice,
            json!({"title": "done", "due_at": rfc3339(due), "remind_at": rfc3339(now + Duration::minutes(15))}),
        )
        .await;
    api.call(
        &api.alice,
        Method::POST,
        &format!("/api/v1/tasks/{}/complete", id(&done)),
        None,
    )
    .await
    .expect(StatusCode::OK);

    let window = format!(
        "from={}&to={}&limit=3",
        rfc3339(now - Duration::minutes(5)),
        rfc3339(now + Duration::hours(1))
    );
    let get = |query: String| {
        Request::get(format!("/internal/reminders?{query}"))
            .body(Body::empty())
            .unwrap()
    };
    let first = api.send(get(window.clone())).await.expect(StatusCode::OK);
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all: Vec<String> = want.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids(&first), all[..3]);
    assert_eq!(
        first["items"][0]["user_id"], "bob",
        "snapshots carry the owner"
    );
    let next = &first["next"];
    let second = api
        .send(get(format!(
            "{window}&after_at={}&after_id={}",
            next["after_at"].as_str().unwrap(),
            next["after_id"].as_str().unwrap()
        )))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&second), all[3..]);
    assert_eq!(second["next"], Value::Null, "a short page is the last");

    for (query, status, code) in [
        (
            format!(
                "from={}&to={}",
                rfc3339(now),
                rfc3339(now - Duration::minutes(1))
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
        (
            format!("{window}&after_at={}", rfc3339(now)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
        (
            format!("{window}&since=1"),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
        ),
        (
            "to=2030-01-01T00:00:00Z".to_owned(),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
        ),
    ] {
        api.send(get(query)).await.expect_error(status, code);
    }
}

/// Regression (found by `rest_props.rs`): a cursor before PostgreSQL's range reached the query
/// and answered 500; like every client timestamp it must lie in 1970..=9999.
#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn internal_reminders_cursor_outside_the_accepted_range_is_422(pool: PgPool) {
    let api = Api::new(pool).await;
    let window = "from=2020-01-01T00%3A00%3A00Z&to=2100-01-01T00%3A00%3A00Z";
    let after_id = "01a23b73-91f1-71ab-9434-4d64de397494";
    for after_at in [
        "-4713-11-23T23%3A59%3A59%2B00%3A00",
        "-262143-01-01T00%3A00%3A00Z",
        "%2B262142-01-01T00%3A00%3A00Z",
        "1969-12-31T23%3A59%3A59Z",
    ] {
        let uri = format!("/internal/reminders?{window}&after_at={after_at}&after_id={after_id}");
        let req = Request::get(uri).body(Body::empty()).unwrap();
        let body = api
            .send(req)
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "after_at", "{after_at}: {body}");
    }
}

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn internal_snapshot_and_next_occurrence(pool: PgPool) {
    let api = Api::new(pool).await;
    let tag = api.create_tag(&api.alice, "gym").await;
    let due = (Utc::now() + Duration::days(1)).trunc_subsecs(0);
    let task = api
        .create_task(
            &api.alice,
            json!({"title": "Gym", "due_at": rfc3339(due), "recurrence_rule": "FREQ=DAILY", "tag_ids": [id(&tag)]}),
        )
        .await;
    let plain = api.create_task(&api.alice, json!({"title": "once"})).await;
    let internal = |method: Method, uri: String, body: Option<Value>| {
        let mut req = Request::builder().method(method).uri(uri);
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        req.body(body).unwrap()
    };

    let snap = api
        .send(internal(
            Method::GET,
            format!("/internal/tasks/{}", id(&task)),
            None,
        ))
        .await
        .expect(StatusCode::OK);
    assert_eq!(snap["task"]["id"], task["id"]);
    assert_eq!(snap["task"]["user_id"], "alice");
    assert_eq!(snap["task"]["title"], "Gym");
    assert_eq!(snap["owner_email"], "alice@example.com");
    assert_eq!(snap["owner_name"], "User alice");
    api.send(internal(
        Method::GET,
        format!("/internal/tasks/{}", uuid::Uuid::now_v7()),
        None,
    ))
    .await
    .expect_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
    api.send(internal(Method::GET, "/internal/tasks/nope".into(), None))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    let next_uri = format!("/internal/tasks/{}/next-occurrence", id(&task));
    let next_due = due + Duration::days(1);
    let body = json!({"due_at": rfc3339(next_due), "idempotency_key": "evt-1"});
    // Only a completed task has a next occurrence: 409, which recurring-task drops.
    let refused = api
        .send(internal(Method::POST, next_uri.clone(), Some(body.clone())))
        .await
        .expect_error(StatusCode::CONFLICT, "TASK_NOT_COMPLETED");
    assert_eq!(refused["details"]["id"], task["id"]);
    api.call(
        &api.alice,
        Method::POST,
        &format!("/api/v1/tasks/{}/complete", id(&task)),
        None,
    )
    .await
    .expect(StatusCode::OK);
    let created = api
        .send(internal(Method::POST, next_uri.clone(), Some(body.clone())))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(created["created"], true);
    let occurrence = &created["task"];
    assert_ne!(occurrence["id"], task["id"]);
    assert_eq!(occurrence["title"], "Gym");
    assert_eq!(occurrence["parent_task_id"], task["id"]);
    assert_eq!(occurrence["occurrence_index"], 1);
    assert_eq!(parse_time(&occurrence["due_at"]), next_due);
    assert_eq!(occurrence["tags"][0]["name"], "gym");

    let repeated = api
        .send(internal(Method::POST, next_uri.clone(), Some(body)))
        .await
        .expect(StatusCode::OK);
    assert_eq!(repeated["created"], false);
    assert_eq!(repeated["task"]["id"], occurrence["id"]);
    // The same completion under another event id: the same occurrence, not a second one.
    let replayed = api
        .send(internal(
            Method::POST,
            next_uri.clone(),
            Some(json!({"due_at": rfc3339(next_due), "idempotency_key": "evt-1-replayed"})),
        ))
        .await
        .expect(StatusCode::OK);
    assert_eq!(replayed["created"], false);
    assert_eq!(replayed["task"]["id"], occurrence["id"]);
    let listed = api
        .get(&api.alice, "/api/v1/tasks")
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed["total"], 3, "the repeated key created nothing");

    api.send(internal(
        Method::POST,
        format!("/internal/tasks/{}/next-occurrence", uuid::Uuid::now_v7()),
        Some(json!({"due_at": rfc3339(next_due), "idempotency_key": "evt-2"})),
    ))
    .await
    .expect_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
    api.send(internal(
        Method::POST,
        format!("/internal/tasks/{}/next-occurrence", id(&plain)),
        Some(json!({"due_at": rfc3339(next_due), "idempotency_key": "evt-3"})),
    ))
    .await
    .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    api.send(internal(
        Method::POST,
        next_uri.clone(),
        Some(json!({"due_at": rfc3339(next_due), "remind_at": rfc3339(next_due + Duration::hours(1)), "idempotency_key": "evt-4"})),
    ))
    .await
    .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    api.send(internal(
        Method::POST,
        next_uri.clone(),
        Some(json!({"due_at": rfc3339(next_due), "idempotency_key": ""})),
    ))
    .await
    .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    api.send(internal(
        Method::POST,
        next_uri.clone(),
        Some(json!({"idempotency_key": "evt-5"})),
    ))
    .await
    .expect_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    for (body, field) in [
        (
            json!({"due_at": rfc3339(next_due), "idempotency_key": "evt\u{0}6"}),
            "idempotency_key",
        ),
        (
            json!({"due_at": "0000-01-01T00:00:00Z", "idempotency_key": "evt-7"}),
            "due_at",
        ),
        (
            json!({"due_at": rfc3339(next_due), "remind_at": "1969-12-31T23:00:00Z",
                   "idempotency_key": "evt-8"}),
            "remind_at",
        ),
    ] {
        let err = api
            .send(internal(Method::POST, next_uri.clone(), Some(body)))
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(err["details"]["field"], field);
    }
    for body in [
        json!([rfc3339(next_due), null, "evt-9"]),
        json!({"due_at": rfc3339(next_due), "idempotency_key": "evt-10", "task_id": id(&task)}),
    ] {
        api.send(internal(Method::POST, next_uri.clone(), Some(body)))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    let listed = api
        .get(&api.alice, "/api/v1/tasks")
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed["total"], 3, "no refused call created a task");
}

// ---------------------------------------------------------------------------------------------
// Mounted in the complete application
// ---------------------------------------------------------------------------------------------

#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn rest_and_internal_routes_inside_the_full_app(pool: PgPool) {
    let api = Api::new(pool).await;
    // Test fixture only: the app API token daprd would present.
    let app_token = "fixture-app-api-token";
    let full = Api {
        app: backend::app::router(
            api.state.clone(),
            middleware::AppTokenLayer::new(Some(app_token.into())),
        ),
        state: api.state.clone(),
        pool: api.pool.clone(),
        alice: api.alice.clone(),
        bob: api.bob.clone(),
    };
    let task = full
        .create_task(&full.alice, json!({"title": "mounted"}))
        .await;
    full.get(&full.alice, "/api/v1/tasks")
        .await
        .expect(StatusCode::OK);
    full.get(&full.alice, "/api/v1/no-such-route")
        .await
        .expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    full.send(
        Request::get("/api/v1/openapi.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .expect(StatusCode::OK);

    // A body over the limit (streamed, so only the extractor notices) answers 413 JSON.
    let big = format!(
        r#"{{"title": "x", "description": "{}"}}"#,
        "y".repeat(300 * 1024)
    );
    let stream = Body::from_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(big)]));
    let reply = full
        .send(
            Request::post("/api/v1/tasks")
                .header(header::AUTHORIZATION, format!("Bearer {}", full.alice))
                .header(header::CONTENT_TYPE, "application/json")
                .body(stream)
                .unwrap(),
        )
        .await;
    reply.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");

    // A declared Content-Length over the limit is refused before any handler, also as JSON.
    let big = "y".repeat(300 * 1024);
    let reply = full
        .send(
            Request::post("/api/v1/tasks")
                .header(header::AUTHORIZATION, format!("Bearer {}", full.alice))
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, big.len())
                .body(Body::from(big))
                .unwrap(),
        )
        .await;
    reply.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");

    // Internal routes need the app token, not a user token.
    let uri = format!("/internal/tasks/{}", id(&task));
    let refused = full.get(&full.alice, &uri).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    let snap = full
        .send(
            Request::get(&uri)
                .header("dapr-api-token", app_token)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(snap["task"]["title"], "mounted");
}
