//! Property tests of the MCP endpoint (issue 12, generated bad input): every one of the 18
//! tools called with generated arguments — objects of the tools' argument names with tricky
//! values, the user's own ids and original integer ids among them, and arguments that are not
//! objects at all — through the complete app router against a real PostgreSQL. Every call is
//! answered: a result, a tool error whose body has a client `code` (never `INTERNAL`), or a
//! JSON-RPC error; never a 5xx, never a panic.
//!
//! JSON-RPC requests go straight to `POST /mcp` (the endpoint is stateless); each test gets a
//! fresh database from `#[sqlx::test]` (set `DATABASE_URL`).

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{Value, json};
use sqlx::PgPool;
use support::tool_args::TOOL_ARGS as TOOLS;
use tower::ServiceExt;

/// Test fixture only: the HS256 key these tests sign with.
const KEY: &str = "fixture-mcp-props-hs256-key";

/// Calls in all: each is one request against the database.
const CASES: u32 = 256;

/// Codes a tool error may carry: the client's mistakes, never `INTERNAL` (or `UNAVAILABLE`,
/// with the database up).
const CLIENT_CODES: &[&str] = &[
    "VALIDATION_ERROR",
    "TASK_NOT_FOUND",
    "NOT_FOUND",
    "CONFLICT",
    "LIMIT_EXCEEDED",
    "TASK_NOT_COMPLETED",
];

/// The complete app router and a token for its one user.
type Mcp = support::AliceApp;

impl Mcp {
    /// Calls `tool` with `arguments`; returns the HTTP status and the JSON answer.
    async fn call(&self, tool: &str, arguments: &Value) -> (StatusCode, Value) {
        let message = json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        });
        let req = Request::post("/mcp")
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .body(Body::from(message.to_string()))
            .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            Value::String(format!("non-JSON: {}", String::from_utf8_lossy(&bytes)))
        });
        (status, body)
    }

    /// The structured result of a call that must succeed.
    async fn ok(&self, tool: &str, arguments: Value) -> Value {
        let (status, body) = self.call(tool, &arguments).await;
        assert_eq!(status, StatusCode::OK, "{tool}: {body}");
        let result = &body["result"];
        assert_ne!(result["isError"], true, "{tool}: {body}");
        result["structuredContent"].clone()
    }
}

/// What every call must be answered with.
fn answered(tool: &str, status: StatusCode, body: &Value) -> Result<(), TestCaseError> {
    prop_assert!(
        !status.is_server_error(),
        "{} answered {}: {}",
        tool,
        status,
        body
    );
    if status.is_client_error() {
        // The transport refused the message: our JSON error body.
        prop_assert!(body["code"].as_str().is_some(), "{}: {}", tool, body);
        return Ok(());
    }
    if let Some(error) = body.get("error") {
        // A JSON-RPC error (e.g. arguments that are not an object): a code and a message.
        prop_assert!(error["code"].is_i64(), "{}: {}", tool, body);
        prop_assert!(error["message"].is_string(), "{}: {}", tool, body);
        return Ok(());
    }
    let result = &body["result"];
    prop_assert!(result.is_object(), "{}: {}", tool, body);
    if result["isError"] == true {
        let code = result["structuredContent"]["code"]
            .as_str()
            .unwrap_or_default();
        prop_assert!(
            CLIENT_CODES.contains(&code),
            "{} failed with {}: {}",
            tool,
            code,
            body
        );
    }
    Ok(())
}

/// Ids of the user's rows that generated arguments may name.
#[derive(Clone, Debug)]
struct Seed {
    ids: Vec<Value>,
}

fn tricky() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "", " ", "\u{0}", "a\u{0}b", "\u{1b}[2J", "\u{7f}", "line\nbreak", "HIGH", "pending",
            "due_date", "DESC", "created", "1", "42", "-1", "9223372036854775808",
            "00000000-0000-0000-0000-000000000000", "2030-01-31T09:00:00+01:00",
            "2030-01-31T09:00", "1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
            "+262142-12-31T23:59:59Z", "9999-12-31T23:59:59.999999999Z", "FREQ=DAILY",
            "FREQ=WEEKLY;BYDAY=MO", "FREQ=DAILY;COUNT=0", "#FFAA00", "#xyz",
        ])
        .prop_map(Value::from),
        1 => any::<String>().prop_map(Value::from),
        1 => (1usize..12_000, any::<char>())
            .prop_map(|(n, c)| Value::from(c.to_string().repeat(n))),
        1 => prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (1i64..20).prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| {
                serde_json::Number::from_f64(f).map(Value::Number)
            }),
        ],
    ]
}

fn value(seed: &Seed) -> impl Strategy<Value = Value> + use<> {
    let id = prop::sample::select(seed.ids.clone());
    let leaf = prop_oneof![3 => tricky(), 1 => id];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..12).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// (tool, arguments): objects of the tool's names (and strays, `user_id` among them), or a
/// value that is no object.
fn call(seed: &Seed) -> impl Strategy<Value = (&'static str, Value)> + use<> {
    let seed = seed.clone();
    prop::sample::select(TOOLS.to_vec()).prop_flat_map(move |(tool, names)| {
        let mut all: Vec<&'static str> = names.to_vec();
        all.push("user_id");
        let name = prop_oneof![
            4 => prop::sample::select(all).prop_map(str::to_owned),
            1 => "[a-z_]{1,8}",
        ];
        let object = prop::collection::btree_map(name, value(&seed), 0..6)
            .prop_map(|m| Value::Object(m.into_iter().collect()));
        let arguments = prop_oneof![8 => object, 1 => value(&seed)];
        (Just(tool), arguments)
    })
}

/// Every tool with generated arguments: answered, never `INTERNAL` or a 5xx.
#[sqlx::test(migrator = "backend::db::MIGRATOR")]
async fn every_tool_answers_generated_arguments(pool: PgPool) {
    let mcp = Mcp::new(pool, KEY).await;
    let id = |v: Value| v["id"].clone();
    let category = id(mcp.ok("create_category", json!({"name": "work"})).await);
    let tag = id(mcp.ok("create_tag", json!({"name": "home"})).await);
    let task = id(mcp
        .ok(
            "add_task",
            json!({"title": "seed", "due_date": "2099-01-01T09:00:00Z",
                   "category_id": category, "tag_ids": [tag]}),
        )
        .await);
    let seed = Seed {
        ids: vec![task, category, tag, json!(1), json!("2")],
    };

    // Proof that the arguments reached both successful calls and refused ones.
    let outcomes = Arc::new(std::sync::Mutex::new([0usize; 2]));
    let counted = Arc::clone(&outcomes);
    let handle = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        let config = ProptestConfig {
            cases: CASES,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        TestRunner::new(config)
            .run(&call(&seed), |(tool, arguments)| {
                handle.block_on(async {
                    let (status, body) = mcp.call(tool, &arguments).await;
                    let failed = usize::from(body["result"]["isError"] == true);
                    counted.lock().unwrap()[failed] += 1;
                    answered(tool, status, &body)
                })
            })
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap();
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    let [succeeded, failed] = *outcomes.lock().unwrap();
    assert!(
        succeeded > 0 && failed > 0,
        "{succeeded} succeeded, {failed} failed"
    );
}
