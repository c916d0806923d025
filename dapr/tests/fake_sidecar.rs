//! Unit tests of the HTTP layer of `DaprClient` against a scripted fake sidecar
//! (`dapr::testing::FakeSidecar`, every answer scripted).
//!
//! The fake only records what it is sent and answers what it is told to: it checks that we build
//! the requests daprd's contract asks for and read its answers right. That the requests really
//! work is proven against the real daprd in the `tests/` crate.

// The helpers below are test code too; clippy's in-test exemption only covers `#[test]` bodies.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode, header};
use dapr::testing::{Answer, FakeSidecar, Recorded};
use dapr::{
    BulkPublishEntry, ClientConfig, CloudEvent, DaprClient, Error, FailurePolicy, Job,
    PublishOptions, SaveItem, TransactionOperation,
};
use serde_json::{Value, json};

const TOKEN: &str = "test-token";

/// One answer the fake gives, in order.
fn answer(status: u16, body: &str) -> Answer {
    Answer::new(StatusCode::from_u16(status).unwrap(), body.to_owned())
}

/// The error body daprd sends with a failed call.
fn dapr_error(status: u16, code: &str, message: &str) -> Answer {
    answer(
        status,
        &json!({"errorCode": code, "message": message}).to_string(),
    )
}

/// A fake sidecar that answers the requests with `script`, in order.
async fn start(script: Vec<Answer>) -> FakeSidecar {
    let fake = FakeSidecar::start().await.unwrap();
    for answer in script {
        fake.script(answer);
    }
    fake
}

fn client(fake: &FakeSidecar) -> DaprClient {
    DaprClient::new(ClientConfig {
        http_endpoint: fake.endpoint(),
        api_token: Some(TOKEN.into()),
        ..ClientConfig::default()
    })
    .unwrap()
}

/// A fake sidecar scripted with `script` and a client that talks to it with the token.
async fn start_with_client(script: Vec<Answer>) -> (FakeSidecar, DaprClient) {
    let fake = start(script).await;
    let client = client(&fake);
    (fake, client)
}

/// The only request received since the last look, checking the token every request must carry.
fn single(fake: &FakeSidecar) -> Recorded {
    let mut requests = fake.take_requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let request = requests.remove(0);
    assert_eq!(request.header("dapr-api-token"), Some(TOKEN));
    request
}

/// Checks that the only request since the last look posted `body` as JSON to `path`.
fn expect_json_post(fake: &FakeSidecar, path: &str, body: &Value) {
    let request = single(fake);
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, path);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(&request.json(), body);
}

/// The error of a call that must fail with daprd's `status` and `code`, for further checks.
fn expect_api_error<T: std::fmt::Debug>(
    result: Result<T, Error>,
    status: StatusCode,
    code: &str,
) -> Error {
    let err = result.unwrap_err();
    assert_eq!(
        (err.status().unwrap(), err.error_code()),
        (status, Some(code))
    );
    err
}

// ---------------------------------------------------------------- publish

#[tokio::test]
async fn publish_event_sends_structured_cloudevent_with_metadata() {
    let fake = start(vec![answer(204, "")]).await;
    let event = CloudEvent::new("outbox-1", "/todo/backend", "com.todo.task.created.v1")
        .with_json_data(&json!({"id": "t1"}))
        .unwrap();
    let options = PublishOptions::default()
        .ttl_seconds(60)
        .partition_key("user-1");
    client(&fake)
        .publish_event("pubsub", "task-events", &event, &options)
        .await
        .unwrap();

    let request = single(&fake);
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/v1.0/publish/pubsub/task-events");
    assert_eq!(
        request.query.as_deref(),
        Some("metadata.partitionKey=user-1&metadata.ttlInSeconds=60")
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/cloudevents+json")
    );
    let body: CloudEvent = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, event);
    assert_eq!(request.json()["id"], "outbox-1");
}

#[tokio::test]
async fn publish_json_sends_plain_json_and_keeps_slashes_in_topic() {
    let fake = start(vec![answer(204, "")]).await;
    client(&fake)
        .publish_json(
            "pubsub",
            "orders/eu",
            &json!({"n": 1}),
            &PublishOptions::default(),
        )
        .await
        .unwrap();

    let request = single(&fake);
    assert_eq!(request.path, "/v1.0/publish/pubsub/orders/eu");
    assert_eq!(request.query, None);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.json(), json!({"n": 1}));
}

#[tokio::test]
async fn publish_errors_carry_daprd_error_body() {
    let (_fake, client) = start_with_client(vec![
        dapr_error(404, "ERR_PUBSUB_NOT_FOUND", "pubsub nope is not found"),
        dapr_error(500, "ERR_PUBSUB_PUBLISH_MESSAGE", "broker down"),
    ])
    .await;
    let options = PublishOptions::default();

    let err = client
        .publish_json("nope", "t", &1, &options)
        .await
        .unwrap_err();
    let Error::Api(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.error_code.as_deref(), Some("ERR_PUBSUB_NOT_FOUND"));
    assert_eq!(api.message, "pubsub nope is not found");
    assert!(!err.is_transient());

    let err = expect_api_error(
        client.publish_json("pubsub", "t", &1, &options).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "ERR_PUBSUB_PUBLISH_MESSAGE",
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn empty_names_are_rejected_before_sending() {
    let (fake, client) = start_with_client(vec![]).await;
    let result = client
        .publish_json("", "t", &1, &PublishOptions::default())
        .await;
    assert!(
        matches!(result, Err(Error::InvalidArgument(_))),
        "{result:?}"
    );
    let result = client
        .schedule_job("", &Job::once_after(Duration::ZERO, json!(1)))
        .await;
    assert!(
        matches!(result, Err(Error::InvalidArgument(_))),
        "{result:?}"
    );
    assert!(fake.take_requests().is_empty());
}

#[tokio::test]
async fn publish_bulk_reports_failed_entries_as_data() {
    let (fake, client) = start_with_client(vec![
        answer(204, ""),
        answer(
            500,
            r#"{"failedEntries":[{"entryId":"e-2","error":"too big"}],"errorCode":"ERR_PUBSUB_PUBLISH_MESSAGE"}"#,
        ),
        dapr_error(403, "ERR_PUBSUB_FORBIDDEN", "no"),
        dapr_error(500, "ERR_INTERNAL", "boom"),
    ]).await;
    let entries = [
        BulkPublishEntry::from_cloud_event(&CloudEvent::new("e-1", "s", "t")).unwrap(),
        BulkPublishEntry::json("e-2", json!({"big": true})),
    ];
    let options = PublishOptions::default().with("maxBulkPubBytes", "1024");

    let response = client
        .publish_bulk("pubsub", "t", &entries, &options)
        .await
        .unwrap();
    assert!(response.is_success());
    let request = single(&fake);
    assert_eq!(request.path, "/v1.0-alpha1/publish/bulk/pubsub/t");
    assert_eq!(
        request.query.as_deref(),
        Some("metadata.maxBulkPubBytes=1024")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    assert_eq!(body[0]["entryId"], "e-1");
    assert_eq!(body[0]["contentType"], "application/cloudevents+json");
    assert_eq!(body[0]["event"]["id"], "e-1");
    assert_eq!(
        body[1],
        json!({"entryId": "e-2", "event": {"big": true}, "contentType": "application/json"})
    );

    let response = client
        .publish_bulk("pubsub", "t", &entries, &options)
        .await
        .unwrap();
    assert_eq!(response.failed_entries.len(), 1);
    assert_eq!(response.failed_entries[0].entry_id, "e-2");
    assert_eq!(response.failed_entries[0].error, "too big");

    expect_api_error(
        client.publish_bulk("pubsub", "t", &entries, &options).await,
        StatusCode::FORBIDDEN,
        "ERR_PUBSUB_FORBIDDEN",
    );

    // A 500 without per-entry failures is a plain error.
    expect_api_error(
        client.publish_bulk("pubsub", "t", &entries, &options).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "ERR_INTERNAL",
    );
}

// ---------------------------------------------------------------- state

#[tokio::test]
async fn get_state_reads_value_and_etag_and_204_as_none() {
    let (fake, client) = start_with_client(vec![
        answer(200, r#"{"seen":true}"#)
            .with_header(header::ETAG, HeaderValue::from_static("\"7\"")),
        answer(204, ""),
    ])
    .await;

    let item = client
        .get_state("statestore", "dedup 1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.etag.as_deref(), Some("\"7\""));
    assert_eq!(item.json::<Value>().unwrap(), json!({"seen": true}));
    let request = single(&fake);
    assert_eq!(request.method, Method::GET);
    assert_eq!(request.path, "/v1.0/state/statestore/dedup%201");

    assert_eq!(
        client.get_state("statestore", "missing").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn save_state_sends_items_and_maps_409_to_etag_mismatch() {
    let items = [
        SaveItem::new("a", json!({"n": 1})).first_write(),
        SaveItem::new("b", json!("x")).with_etag("3"),
    ];
    let (fake, client) = start_with_client(vec![
        answer(204, ""),
        dapr_error(409, "ERR_STATE_SAVE", "possible etag mismatch"),
    ])
    .await;

    client.save_state("statestore", &items).await.unwrap();
    expect_json_post(
        &fake,
        "/v1.0/state/statestore",
        &json!([
            {"key": "a", "value": {"n": 1}, "options": {"concurrency": "first-write"}},
            {"key": "b", "value": "x", "etag": "3"}
        ]),
    );

    let err = client.save_state("statestore", &items).await.unwrap_err();
    let Error::EtagMismatch(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.error_code.as_deref(), Some("ERR_STATE_SAVE"));
    assert!(!err.is_transient());
}

#[tokio::test]
async fn delete_state_sends_if_match() {
    let (fake, client) = start_with_client(vec![
        answer(204, ""),
        answer(204, ""),
        dapr_error(409, "ERR_STATE_DELETE", "etag mismatch"),
    ])
    .await;

    client
        .delete_state("statestore", "k", Some("9"))
        .await
        .unwrap();
    let request = single(&fake);
    assert_eq!(request.method, Method::DELETE);
    assert_eq!(request.path, "/v1.0/state/statestore/k");
    assert_eq!(request.header("if-match"), Some("9"));

    client.delete_state("statestore", "k", None).await.unwrap();
    assert_eq!(single(&fake).header("if-match"), None);

    let result = client.delete_state("statestore", "k", Some("8")).await;
    assert!(matches!(result, Err(Error::EtagMismatch(_))), "{result:?}");
}

#[tokio::test]
async fn bulk_state_and_transactions() {
    let (fake, client) = start_with_client(vec![
        answer(
            200,
            r#"[{"key":"a","data":{"n":1},"etag":"1"},{"key":"b"},{"key":"c","error":"boom"}]"#,
        ),
        answer(204, ""),
        dapr_error(409, "ERR_STATE_TRANSACTION", "etag mismatch"),
    ])
    .await;

    let items = client
        .get_bulk_state("statestore", &["a", "b", "c"])
        .await
        .unwrap();
    let request = single(&fake);
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/v1.0/state/statestore/bulk");
    assert_eq!(request.json(), json!({"keys": ["a", "b", "c"]}));
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].data, Some(json!({"n": 1})));
    assert_eq!(items[0].etag.as_deref(), Some("1"));
    assert_eq!(items[1].data, None);
    assert_eq!(items[2].error.as_deref(), Some("boom"));

    let ops = [
        TransactionOperation::Upsert(SaveItem::new("a", json!(2)).with_etag("1")),
        TransactionOperation::Delete {
            key: "b".into(),
            etag: None,
        },
    ];
    client.transact_state("statestore", &ops).await.unwrap();
    let request = single(&fake);
    assert_eq!(request.path, "/v1.0/state/statestore/transaction");
    assert_eq!(
        request.json(),
        json!({"operations": [
            {"operation": "upsert", "request": {"key": "a", "value": 2, "etag": "1"}},
            {"operation": "delete", "request": {"key": "b"}}
        ]})
    );

    let result = client.transact_state("statestore", &ops).await;
    assert!(matches!(result, Err(Error::EtagMismatch(_))), "{result:?}");
}

#[tokio::test]
async fn reserved_key_separator_is_rejected_before_sending() {
    let (fake, client) = start_with_client(vec![]).await;
    let bad = "app||key";
    assert!(matches!(
        client.get_state("s", bad).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        client
            .save_state("s", &[SaveItem::new(bad, json!(1))])
            .await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        client.delete_state("s", bad, None).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        client.get_bulk_state("s", &["ok", bad]).await,
        Err(Error::InvalidArgument(_))
    ));
    let ops = [TransactionOperation::Delete {
        key: bad.into(),
        etag: None,
    }];
    assert!(matches!(
        client.transact_state("s", &ops).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(fake.take_requests().is_empty());
}

// ---------------------------------------------------------------- secrets

#[tokio::test]
async fn secrets_single_and_bulk() {
    let (fake, client) = start_with_client(vec![
        answer(200, r#"{"db-url":"postgres://x"}"#),
        answer(
            200,
            r#"{"db-url":{"db-url":"postgres://x"},"smtp":{"user":"u","password":"p"}}"#,
        ),
        dapr_error(
            401,
            "ERR_SECRET_STORE_NOT_FOUND",
            "secret store nope not found",
        ),
    ])
    .await;

    let secret = client.get_secret("secretstore", "db-url").await.unwrap();
    assert_eq!(
        secret,
        BTreeMap::from([("db-url".to_owned(), "postgres://x".to_owned())])
    );
    let request = single(&fake);
    assert_eq!(request.method, Method::GET);
    assert_eq!(request.path, "/v1.0/secrets/secretstore/db-url");

    let all = client.get_bulk_secrets("secretstore").await.unwrap();
    assert_eq!(all["smtp"]["password"], "p");
    assert_eq!(single(&fake).path, "/v1.0/secrets/secretstore/bulk");

    expect_api_error(
        client.get_secret("nope", "x").await,
        StatusCode::UNAUTHORIZED,
        "ERR_SECRET_STORE_NOT_FOUND",
    );
}

// ---------------------------------------------------------------- jobs

#[tokio::test]
async fn schedule_job_posts_to_stable_path_and_409_stays_api_error() {
    let (fake, client) = start_with_client(vec![
        answer(204, ""),
        dapr_error(409, "DAPR_SCHEDULER_SCHEDULE_JOB", "job already exists"),
    ])
    .await;
    let job = Job::once_after(Duration::from_secs(90), json!({"task_id": "t1"}))
        .with_overwrite(true)
        .with_failure_policy(FailurePolicy::Constant {
            interval: Duration::from_secs(2),
            max_retries: Some(5),
        });

    client.schedule_job("reminder-t1", &job).await.unwrap();
    expect_json_post(
        &fake,
        "/v1.0/jobs/reminder-t1",
        &json!({
            "dueTime": "90s",
            "data": {"task_id": "t1"},
            "overwrite": true,
            "failurePolicy": {"constant": {"interval": "2s", "maxRetries": 5}}
        }),
    );

    let err = client.schedule_job("reminder-t1", &job).await.unwrap_err();
    assert!(matches!(err, Error::Api(_)), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::CONFLICT));
}

#[tokio::test]
async fn get_job_unwraps_data_and_reads_not_found_as_none() {
    let (fake, client) = start_with_client(vec![
        answer(
            200,
            r#"{"name":"reminder-t1","dueTime":"2030-01-01T00:00:00Z","data":{"@type":"type.googleapis.com/google.protobuf.Value","value":{"task_id":"t1"}}}"#,
        ),
        answer(
            500,
            r#"{"errorCode":"DAPR_SCHEDULER_GET_JOB","message":"failed to get job due to: rpc error: code = NotFound desc = job not found: reminder-t2","details":[]}"#,
        ),
        dapr_error(500, "DAPR_SCHEDULER_GET_JOB", "failed to get job due to: rpc error: code = Unavailable desc = no scheduler"),
        answer(204, ""),
    ]).await;

    let job = client.get_job("reminder-t1").await.unwrap().unwrap();
    assert_eq!(job.data, json!({"task_id": "t1"}));
    assert_eq!(job.due_time.as_deref(), Some("2030-01-01T00:00:00Z"));
    let request = single(&fake);
    assert_eq!(request.method, Method::GET);
    assert_eq!(request.path, "/v1.0/jobs/reminder-t1");

    assert_eq!(client.get_job("reminder-t2").await.unwrap(), None);

    let err = client.get_job("reminder-t3").await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");

    client.delete_job("reminder-t1").await.unwrap();
    let requests = fake.take_requests();
    let delete = requests.last().unwrap();
    assert_eq!(delete.method, Method::DELETE);
    assert_eq!(delete.path, "/v1.0/jobs/reminder-t1");
}

// ---------------------------------------------------------------- invocation

#[tokio::test]
async fn invoke_builds_the_method_path_and_returns_any_status() {
    let (fake, client) = start_with_client(vec![
        answer(404, r#"{"code":"TASK_NOT_FOUND"}"#),
        answer(200, r#"{"id":"t1","title":"x"}"#),
        dapr_error(500, "ERR_DIRECT_INVOKE", "app down"),
    ])
    .await;

    let response = client
        .invoke(
            "backend",
            Method::POST,
            "/internal/tasks/t1/next-occurrence?dry=1",
            Some(&json!({"event_id": "e1"})),
            &[("idempotency-key", "e1")],
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let request = single(&fake);
    assert_eq!(request.method, Method::POST);
    assert_eq!(
        request.path,
        "/v1.0/invoke/backend/method/internal/tasks/t1/next-occurrence"
    );
    assert_eq!(request.query.as_deref(), Some("dry=1"));
    assert_eq!(request.header("idempotency-key"), Some("e1"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.json(), json!({"event_id": "e1"}));

    let task: Value = client
        .invoke_json("backend", Method::GET, "internal/tasks/t1", None, &[])
        .await
        .unwrap();
    assert_eq!(task["title"], "x");
    let request = single(&fake);
    assert_eq!(
        request.path,
        "/v1.0/invoke/backend/method/internal/tasks/t1"
    );
    assert!(request.body.is_empty());

    expect_api_error(
        client
            .invoke_json::<Value>("backend", Method::GET, "x", None, &[])
            .await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "ERR_DIRECT_INVOKE",
    );

    let result = client
        .invoke("backend", Method::GET, "x", None, &[("bad header", "v")])
        .await;
    assert!(
        matches!(result, Err(Error::InvalidArgument(_))),
        "{result:?}"
    );
}

// ---------------------------------------------------------------- health, metadata, shutdown

#[tokio::test]
async fn health_metadata_and_shutdown_paths() {
    let (fake, client) = start_with_client(vec![
        answer(
            200,
            r#"{"id":"backend","runtimeVersion":"1.18.3","components":[]}"#,
        ),
        answer(204, ""),
        dapr_error(500, "ERR_HEALTH_NOT_READY", "dapr is not ready"),
        answer(204, ""),
    ])
    .await;

    let metadata = client.metadata().await.unwrap();
    assert_eq!(metadata["id"], "backend");
    client.healthz_outbound().await.unwrap();
    let err = client.healthz().await.unwrap_err();
    assert_eq!(err.error_code(), Some("ERR_HEALTH_NOT_READY"));
    client.shutdown().await.unwrap();

    let seen: Vec<(Method, String)> = fake
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        seen,
        [
            (Method::GET, "/v1.0/metadata".to_owned()),
            (Method::GET, "/v1.0/healthz/outbound".to_owned()),
            (Method::GET, "/v1.0/healthz".to_owned()),
            (Method::POST, "/v1.0/shutdown".to_owned()),
        ]
    );
}

#[tokio::test]
async fn wait_ready_polls_outbound_health_until_204() {
    let not_ready = r#"{"errorCode":"ERR_OUTBOUND_HEALTH_NOT_READY","message":"not ready"}"#;
    let fake = start(vec![
        answer(500, not_ready),
        answer(500, not_ready),
        answer(204, ""),
    ])
    .await;
    client(&fake)
        .wait_ready(Duration::from_secs(60))
        .await
        .unwrap();
    let paths: Vec<String> = fake.take_requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v1.0/healthz/outbound"; 3]);
}

// ---------------------------------------------------------------- transport

/// An address nothing listens on: bound once to get a free port, then released.
async fn closed_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn connection_refused_is_a_transient_transport_error() {
    let client = DaprClient::new(ClientConfig {
        http_endpoint: closed_endpoint().await,
        ..ClientConfig::default()
    })
    .unwrap();
    let err = client
        .publish_json("pubsub", "t", &1, &PublishOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(err.status(), None);

    let err = client
        .wait_ready(Duration::from_millis(250))
        .await
        .unwrap_err();
    let Error::NotReady { last, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(matches!(**last, Error::Transport(_)), "{last:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn no_token_header_without_a_token() {
    let fake = start(vec![answer(204, "")]).await;
    let client = DaprClient::new(ClientConfig {
        http_endpoint: fake.endpoint(),
        ..ClientConfig::default()
    })
    .unwrap();
    assert_eq!(client.endpoint(), fake.endpoint());
    client.healthz_outbound().await.unwrap();
    let requests = fake.take_requests();
    assert_eq!(requests[0].header("dapr-api-token"), None);
}
