//! Property tests of the REST edge (issue 12, generated bad input): arbitrary JSON bodies for
//! every write route — random values, objects of the right field names with any values, valid
//! bodies with fields swapped for tricky ones (NUL, control characters, timestamps at the ends
//! of chrono's range, huge numbers, foreign ids) — arbitrary query strings for the list and
//! search routes, and oversized or deeply nested bodies, all through the complete app router
//! against a real PostgreSQL. Every answer is a 2xx or a 4xx with a JSON error body carrying a
//! `code`: never a 5xx (a database refusal of something validation let through), never a panic.
//!
//! Each test gets a fresh database from `#[sqlx::test]` (set `DATABASE_URL`); proptest runs on
//! a blocking thread that drives the router on the test's runtime, so a failure shrinks as usual.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;

/// Test fixture only: the HS256 key these tests sign with.
const KEY: &str = "fixture-rest-props-hs256-key";

/// Cases per property: each is one request against the database, so a few dozen keep the
/// suite at seconds.
const CASES: u32 = 64;

/// The complete app router and a token for its one user.
type Api = support::AliceApp;

/// Rows of the user that generated bodies may name.
#[derive(Clone, Debug)]
struct Seed {
    task: String,
    category: String,
    tag: String,
}

impl Api {
    /// Sends a request with the user's token; returns the status and the body (JSON, or
    /// `Null` when empty).
    async fn send(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Value), TestCaseError> {
        // What no HTTP client can send (a bare `%`, a URI over 64 KiB) never reaches a router.
        if http::Uri::try_from(uri).is_err() {
            return Err(TestCaseError::reject("not a URI"));
        }
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let res = self
            .app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(body) => body,
                Err(_) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    return Err(TestCaseError::fail(format!(
                        "{status} answered non-JSON: {text}"
                    )));
                }
            }
        };
        Ok((status, body))
    }

    async fn json(&self, method: Method, uri: &str, body: &Value) -> Value {
        let bytes = body.to_string().into_bytes();
        let (status, body) = self
            .send(method, uri, Some("application/json"), bytes)
            .await
            .unwrap();
        assert!(status.is_success(), "{uri}: {status} {body}");
        body
    }

    async fn seed(&self) -> Seed {
        let id = |v: Value| v["id"].as_str().unwrap().to_owned();
        let category = id(self
            .json(Method::POST, "/api/v1/categories", &json!({"name": "work"}))
            .await);
        let tag = id(self
            .json(Method::POST, "/api/v1/tags", &json!({"name": "home"}))
            .await);
        let task = id(self
            .json(
                Method::POST,
                "/api/v1/tasks",
                &json!({"title": "seed", "due_at": "2099-01-01T09:00:00Z",
                        "category_id": category, "tag_ids": [tag]}),
            )
            .await);
        Seed {
            task,
            category,
            tag,
        }
    }
}

/// How many answers of each status a property saw: proof that its inputs reached both the
/// success and the refusal paths, not only one of them.
#[derive(Clone, Default)]
struct Tally(Arc<std::sync::Mutex<std::collections::BTreeMap<u16, usize>>>);

impl Tally {
    fn record(&self, status: StatusCode) {
        *self.0.lock().unwrap().entry(status.as_u16()).or_default() += 1;
    }

    #[track_caller]
    fn assert_both_paths(&self) {
        let seen = self.0.lock().unwrap().clone();
        assert!(
            seen.keys().any(|s| (200..300).contains(s)),
            "no success: {seen:?}"
        );
        assert!(
            seen.keys().any(|s| (400..500).contains(s)),
            "no refusal: {seen:?}"
        );
    }
}

/// The property every answer must have: a 2xx, or a 4xx with a JSON error body.
fn settled(status: StatusCode, body: &Value) -> Result<(), TestCaseError> {
    prop_assert!(
        status.is_success() || status.is_client_error(),
        "answered {}: {}",
        status,
        body
    );
    if status.is_client_error() {
        prop_assert!(
            body["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{}",
            body
        );
        prop_assert!(body["message"].as_str().is_some(), "{}", body);
    }
    Ok(())
}

/// Runs `test` on `cases` values of the strategy `make` builds, on a blocking thread, each case
/// driven on the calling test's runtime; a failure panics with the shrunk input. (Recursive
/// strategies are not `Send`, so the strategy is built on that thread.)
async fn check<M, S, F, Fut>(cases: u32, make: M, test: F)
where
    M: FnOnce() -> S + Send + 'static,
    S: Strategy,
    S::Value: std::fmt::Debug,
    F: Fn(S::Value) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), TestCaseError>>,
{
    let handle = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        let config = ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        TestRunner::new(config)
            .run(&make(), |value| handle.block_on(test(value)))
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap();
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// Strings a validation might miss: control characters, lengths at the limits, timestamps at
/// the ends of every range, rules, colours, ids.
fn tricky_string() -> impl Strategy<Value = String> {
    let fixed: Vec<String> = [
        "",
        " ",
        "\u{0}",
        "a\u{0}b",
        "\u{1b}[2J",
        "\u{7f}",
        "\u{85}",
        "\u{feff}",
        "\u{202e}x",
        "line\nbreak",
        "tab\there",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2099-01-01T09:00:00+14:00",
        "2099-01-01T09:00:00-23:59",
        "9999-12-31T23:59:59.999999999Z",
        "+10000-01-01T00:00:00Z",
        "+262142-12-31T23:59:59Z",
        "-262143-01-01T00:00:00Z",
        "-0001-01-01T00:00:00Z",
        "2099-01-01",
        "2099-01-01T09:00:00",
        "FREQ=DAILY",
        "FREQ=WEEKLY;BYDAY=MO,FR",
        "FREQ=MONTHLY;BYDAY=5FR;COUNT=10000",
        "FREQ=YEARLY;UNTIL=99991231T235959Z",
        "FREQ=DAILY;UNTIL=19700101",
        "FREQ=DAILY\u{0}",
        "RRULE:FREQ=HOURLY",
        "#FFFFFF",
        "#ggg000",
        "#fff",
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "not-a-uuid",
        "low",
        "URGENT",
        "medium",
        "-1",
        "1e400",
        "18446744073709551616",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    prop_oneof![
        4 => prop::sample::select(fixed),
        2 => any::<String>(),
        1 => "[ -~]{0,24}",
        1 => (1usize..12_000, any::<char>()).prop_map(|(n, c)| c.to_string().repeat(n)),
        1 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
    ]
}

/// Any JSON value whose strings are tricky ones.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = support::json::json_leaf(true, vec![tricky_string().prop_map(Value::from).boxed()]);
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value for a field: tricky ones, the user's own ids, lists of ids.
fn field_value(seed: &Seed) -> impl Strategy<Value = Value> + use<> {
    let ids = vec![
        Value::from(seed.task.clone()),
        Value::from(seed.category.clone()),
        Value::from(seed.tag.clone()),
    ];
    let id = prop::sample::select(ids);
    prop_oneof![
        3 => any_json(),
        1 => id.clone(),
        1 => prop::collection::vec(prop_oneof![id, any_json()], 0..12).prop_map(Value::from),
    ]
}

/// JSON bodies for a route taking `fields`: a valid `base` with fields replaced or removed,
/// objects of the route's field names (and strays) with any values, and any JSON at all.
fn body(
    seed: &Seed,
    base: Value,
    fields: &'static [&'static str],
) -> impl Strategy<Value = Value> + use<> {
    let names = prop_oneof![
        4 => prop::sample::select(fields.to_vec()).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["user_id", "id", "due_date", "query", "created_at"])
            .prop_map(str::to_owned),
        1 => "[a-z_]{1,10}",
    ];
    let edits = prop::collection::vec((names, prop::option::of(field_value(seed))), 1..4);
    let mutated = edits.prop_map(move |edits| {
        let mut object = base.clone();
        let map = object.as_object_mut().unwrap();
        for (name, value) in edits {
            match value {
                Some(value) => map.insert(name, value),
                None => map.remove(&name),
            };
        }
        object
    });
    prop_oneof![
        4 => mutated,
        1 => any_json(),
    ]
}

/// A body as bytes: the JSON, sometimes cut short, and a content type, mostly JSON.
fn request_body(
    json: impl Strategy<Value = Value>,
) -> impl Strategy<Value = (Option<String>, Vec<u8>)> {
    let content_type = prop_oneof![
        8 => Just(Some("application/json".to_owned())),
        1 => Just(Some("application/merge-patch+json; charset=utf-8".to_owned())),
        1 => Just(None),
        1 => Just(Some("text/plain".to_owned())),
    ];
    let cut = prop::option::of(any::<prop::sample::Index>());
    (content_type, json, cut).prop_map(|(ct, json, cut)| {
        let mut bytes = json.to_string().into_bytes();
        if let Some(at) = cut {
            bytes.truncate(at.index(bytes.len() + 1));
        }
        (ct, bytes)
    })
}

const TASK_FIELDS: &[&str] = &[
    "title",
    "description",
    "priority",
    "category_id",
    "tag_ids",
    "due_at",
    "remind_at",
    "recurrence_rule",
    "completed",
];
const LABEL_FIELDS: &[&str] = &["name", "color"];
const REMINDER_FIELDS: &[&str] = &["remind_before_minutes", "remind_at"];

/// The write routes: (method, path, valid base body, field names).
fn write_routes(seed: &Seed) -> Vec<(Method, String, Value, &'static [&'static str])> {
    let task = format!("/api/v1/tasks/{}", seed.task);
    let mut routes = vec![
        (
            Method::POST,
            "/api/v1/tasks".to_owned(),
            json!({"title": "t", "due_at": "2099-01-01T09:00:00Z", "priority": "high",
                   "recurrence_rule": "FREQ=DAILY", "tag_ids": [seed.tag]}),
            TASK_FIELDS,
        ),
        (
            Method::PATCH,
            task.clone(),
            json!({"title": "t2", "due_at": "2099-02-01T09:00:00Z"}),
            TASK_FIELDS,
        ),
        (
            Method::PUT,
            format!("{task}/reminder"),
            json!({"remind_before_minutes": 60}),
            REMINDER_FIELDS,
        ),
    ];
    // Categories and tags are written alike.
    for (kind, id, name, color) in [
        ("categories", &seed.category, "c", "#112233"),
        ("tags", &seed.tag, "g", "#445566"),
    ] {
        routes.push((
            Method::POST,
            format!("/api/v1/{kind}"),
            json!({"name": name, "color": color}),
            LABEL_FIELDS,
        ));
        routes.push((
            Method::PATCH,
            format!("/api/v1/{kind}/{id}"),
            json!({"name": format!("{name}2")}),
            LABEL_FIELDS,
        ));
    }
    routes
}

/// Every write route with generated bodies: settled, never a 5xx.
#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn write_bodies_are_answered_2xx_or_json_4xx(pool: PgPool) {
    let api = Api::new(pool, KEY).await;
    let seed = api.seed().await;
    let routes = Arc::new(write_routes(&seed));
    let strategy = {
        let routes = Arc::clone(&routes);
        move || {
            let strategies: Vec<_> = routes
                .iter()
                .enumerate()
                .map(|(i, (_, _, base, fields))| {
                    request_body(body(&seed, base.clone(), fields)).prop_map(move |b| (i, b))
                })
                .collect();
            proptest::strategy::Union::new(strategies)
        }
    };
    let tally = Tally::default();
    let seen = tally.clone();
    check(CASES * 4, strategy, move |(i, (ct, bytes))| {
        let (api, routes, seen) = (api.clone(), Arc::clone(&routes), seen.clone());
        async move {
            let (method, path, _, _) = &routes[i];
            let (status, body) = api.send(method.clone(), path, ct.as_deref(), bytes).await?;
            seen.record(status);
            settled(status, &body)
        }
    })
    .await;
    tally.assert_both_paths();
}

/// Percent-encodes every byte outside the unreserved set.
fn encode_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Query strings: known keys (and strays) with tricky or typical values, encoded, plus raw
/// fragments with broken percent escapes.
fn query_string(seed: &Seed) -> impl Strategy<Value = String> + use<> {
    let key = prop_oneof![
        4 => prop::sample::select(vec![
            "status", "priority", "category_id", "tag_ids", "due_before", "due_after",
            "sort_by", "order", "limit", "offset", "q",
        ]),
        1 => prop::sample::select(vec!["statuss", "query", "user_id", "", "limit[]"]),
    ];
    let value = prop_oneof![
        2 => tricky_string(),
        1 => any_timestamp(),
        2 => prop::sample::select(vec![
            "all", "pending", "completed", "created", "due", "due_date", "priority", "asc",
            "desc", "0", "1", "200", "201", "4294967295", "4294967296", "-1", "1.5",
        ]).prop_map(str::to_owned),
        1 => prop::sample::select(vec![seed.category.clone(), seed.tag.clone(),
            format!("{},{}", seed.tag, seed.tag), format!(",{}, ,x", seed.tag)]),
    ];
    let pair =
        (key, value).prop_map(|(k, v)| format!("{}={}", encode_component(k), encode_component(&v)));
    let raw = "[a-z0-9=&%+;,._~-]{0,30}";
    prop_oneof![
        4 => prop::collection::vec(pair, 0..6).prop_map(|p| p.join("&")),
        1 => raw,
    ]
}

/// `GET /tasks` and `GET /search` with generated query strings: settled, never a 5xx.
#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn query_strings_are_answered_2xx_or_json_4xx(pool: PgPool) {
    let api = Api::new(pool, KEY).await;
    let seed = api.seed().await;
    let strategy = move || (any::<bool>(), query_string(&seed));
    let tally = Tally::default();
    let seen = tally.clone();
    check(CASES * 2, strategy, move |(search, query)| {
        let (api, seen) = (api.clone(), seen.clone());
        async move {
            let path = if search {
                "/api/v1/search"
            } else {
                "/api/v1/tasks"
            };
            let uri = format!("{path}?{query}");
            let (status, body) = api.send(Method::GET, &uri, None, Vec::new()).await?;
            seen.record(status);
            settled(status, &body)
        }
    })
    .await;
    tally.assert_both_paths();
}

/// Bodies over the limit and bodies nested deeper than any parser should follow: 413 and
/// 400, JSON either way.
#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn oversized_and_deeply_nested_bodies_are_json_4xx(pool: PgPool) {
    let api = Api::new(pool, KEY).await;
    let strategy = || {
        prop_oneof![
            // Longer than the 256 KiB limit, as a title string.
            (256 * 1024usize..300 * 1024).prop_map(|n| {
                let (status, body) = (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(r#"{{"title":"{}"}}"#, "x".repeat(n)),
                );
                (status, body)
            }),
            // Arrays or objects nested 100 to 20 000 levels inside the title.
            (100usize..20_000, any::<bool>()).prop_map(|(depth, arrays)| {
                let (open, close) = if arrays {
                    ("[", "]")
                } else {
                    (r#"{"a":"#, "}")
                };
                let body = format!(
                    r#"{{"title":{}1{}}}"#,
                    open.repeat(depth),
                    close.repeat(depth)
                );
                (StatusCode::BAD_REQUEST, body)
            }),
        ]
    };
    check(CASES / 4, strategy, move |(expected, body)| {
        let api = api.clone();
        async move {
            let (status, answer) = api
                .send(
                    Method::POST,
                    "/api/v1/tasks",
                    Some("application/json"),
                    body.into_bytes(),
                )
                .await?;
            settled(status, &answer)?;
            prop_assert_eq!(status, expected, "{}", answer);
            Ok(())
        }
    })
    .await;
}

/// Path segments: the user's ids, other UUIDs, original integer ids, and text that is no id
/// (percent-escapes of invalid UTF-8 among it).
fn path_segment(seed: &Seed) -> impl Strategy<Value = String> + use<> {
    prop_oneof![
        1 => prop::sample::select(vec![seed.task.clone(), seed.category.clone(), seed.tag.clone()]),
        1 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        1 => prop::sample::select(vec![
            "1",
            "0",
            "-1",
            "%FF",
            "%00",
            "%2F",
            "%20",
            "00000000-0000-0000-0000-000000000000",
            "{00000000-0000-0000-0000-000000000000}",
            "urn:uuid:00000000-0000-0000-0000-000000000000",
        ])
        .prop_map(str::to_owned),
        1 => tricky_string().prop_map(|s| encode_component(&s)),
    ]
}

/// Every route shape with generated path segments and methods: settled, never a 5xx.
#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn path_parameters_are_answered_2xx_or_json_4xx(pool: PgPool) {
    let api = Api::new(pool, KEY).await;
    let seed = api.seed().await;
    let strategy = move || {
        let shape = prop::sample::select(vec![
            "/api/v1/tasks/{}",
            "/api/v1/tasks/{}/complete",
            "/api/v1/tasks/{}/reminder",
            "/api/v1/tasks/{}/tags/{}",
            "/api/v1/categories/{}",
            "/api/v1/tags/{}",
        ]);
        let method = prop::sample::select(vec![
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ]);
        (shape, path_segment(&seed), path_segment(&seed), method)
    };
    check(CASES * 2, strategy, move |(shape, a, b, method)| {
        let api = api.clone();
        async move {
            let path = shape.replacen("{}", &a, 1).replacen("{}", &b, 1);
            let body = b"{}".to_vec();
            let (status, answer) = api
                .send(method, &path, Some("application/json"), body)
                .await?;
            settled(status, &answer)
        }
    })
    .await;
}

/// Timestamps for query strings: anywhere in chrono's range (far outside PostgreSQL's), its
/// ends, and the edges of the accepted range.
fn any_timestamp() -> impl Strategy<Value = String> {
    let min = chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp();
    let max = chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp();
    prop_oneof![
        2 => (min..=max).prop_map(|s| chrono::DateTime::from_timestamp(s, 0).unwrap().to_rfc3339()),
        2 => (0i64..=253_402_300_799)
            .prop_map(|s| chrono::DateTime::from_timestamp(s, 0).unwrap().to_rfc3339()),
        1 => tricky_string(),
    ]
}

/// The internal routes other services call through their sidecars: the reminder window with
/// generated bounds and cursors, and next-occurrence bodies: settled, never a 5xx.
#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn internal_routes_are_answered_2xx_or_json_4xx(pool: PgPool) {
    let api = Api::new(pool, KEY).await;
    let seed = api.seed().await;
    let strategy = move || {
        // Mostly a valid window, so the cursor and the limit are what gets tested.
        let bound = |valid: &'static str| {
            prop::option::of(prop_oneof![3 => Just(valid.to_owned()), 1 => any_timestamp()])
        };
        let id = prop_oneof![
            Just(seed.task.clone()),
            any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
            tricky_string(),
        ];
        let cursor = prop_oneof![
            3 => (any_timestamp(), id.clone()).prop_map(|(at, id)| (Some(at), Some(id))),
            1 => (prop::option::of(any_timestamp()), prop::option::of(id)),
        ];
        let limit = prop_oneof![
            Just("0".to_owned()),
            Just("500".to_owned()),
            tricky_string()
        ];
        let window = (
            bound("2020-01-01T00:00:00Z"),
            bound("2100-01-01T00:00:00Z"),
            cursor,
            prop::option::of(limit),
        )
            .prop_map(|(from, to, (after_at, after_id), limit)| {
                let pairs = [
                    ("from", from),
                    ("to", to),
                    ("after_at", after_at),
                    ("after_id", after_id),
                    ("limit", limit),
                ];
                let query: Vec<String> = pairs
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| format!("{k}={}", encode_component(&v))))
                    .collect();
                let uri = format!("/internal/reminders?{}", query.join("&"));
                (Method::GET, uri, None)
            });
        let next = body(
            &seed,
            json!({"due_at": "2099-01-02T09:00:00Z", "idempotency_key": "k"}),
            &["due_at", "remind_at", "idempotency_key"],
        )
        .prop_map({
            let task = seed.task.clone();
            move |b| {
                let path = format!("/internal/tasks/{task}/next-occurrence");
                (Method::POST, path, Some(b.to_string().into_bytes()))
            }
        });
        prop_oneof![3 => window, 1 => next]
    };
    check(CASES * 2, strategy, move |(method, uri, body)| {
        let api = api.clone();
        async move {
            let ct = body.as_ref().map(|_| "application/json");
            let (status, answer) = api.send(method, &uri, ct, body.unwrap_or_default()).await?;
            settled(status, &answer)
        }
    })
    .await;
}
