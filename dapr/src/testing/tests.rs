//! The fake against our own client: each daprd behaviour it claims, pinned.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Answer, FakeSidecar, JobCall};
use crate::{ClientConfig, DaprClient, Error, Job, PublishOptions, SaveItem};

async fn started() -> (FakeSidecar, DaprClient) {
    let fake = FakeSidecar::start().await.unwrap();
    let client = DaprClient::new(ClientConfig {
        http_endpoint: fake.endpoint(),
        ..ClientConfig::default()
    })
    .unwrap();
    (fake, client)
}

#[tokio::test]
async fn scripts_come_first_in_order_and_only_where_they_match() {
    let (fake, client) = started().await;
    fake.script_for(
        Method::GET,
        "/v1.0/state/",
        Answer::dapr_error(StatusCode::CONFLICT, "ERR_X", "x"),
    );
    fake.script(Answer::empty(StatusCode::ACCEPTED));

    // The health probe takes the unmatched script, the state read the one for its path.
    client.healthz_outbound().await.unwrap();
    let err = client.get_state("s", "k").await.unwrap_err();
    assert_eq!(err.error_code(), Some("ERR_X"));
    // Scripts used up: the model answers again.
    assert_eq!(client.get_state("s", "k").await.unwrap(), None);

    let requests = fake.take_requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1.0/healthz/outbound",
            "/v1.0/state/s/k",
            "/v1.0/state/s/k"
        ]
    );
    assert!(fake.requests().is_empty(), "taken");
}

#[tokio::test]
async fn state_keeps_etags_first_write_and_ttl() {
    let (fake, client) = started().await;
    let first = SaveItem::new("a b", json!({"n": 1}))
        .first_write()
        .with_metadata("ttlInSeconds", "60");
    client
        .save_state("s", std::slice::from_ref(&first))
        .await
        .unwrap();
    let item = client.get_state("s", "a b").await.unwrap().unwrap();
    assert_eq!(item.json::<Value>().unwrap(), json!({"n": 1}));
    assert_eq!(fake.state()["a b"].metadata["ttlInSeconds"], "60");

    // A refused first-write is a generic 500; a stale ETag a 409.
    let err = client.save_state("s", &[first]).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert!(err.to_string().contains("no item was updated"), "{err}");
    let stale = SaveItem::new("a b", json!(2)).with_etag("stale");
    let err = client.save_state("s", &[stale]).await.unwrap_err();
    assert!(matches!(err, Error::EtagMismatch(_)), "{err:?}");
    let etag = item.etag.unwrap();
    let fresh = SaveItem::new("a b", json!(2)).with_etag(etag.clone());
    client.save_state("s", &[fresh]).await.unwrap();
    assert_eq!(fake.get("a b"), Some(json!(2)));

    // One request is one transaction: a failing item stops the others too.
    let items = [
        SaveItem::new("new", json!(1)),
        SaveItem::new("a b", json!(3)).with_etag(etag),
    ];
    assert!(client.save_state("s", &items).await.is_err());
    assert_eq!(fake.get("new"), None);
    let statuses: Vec<u16> = fake.saves().iter().map(|s| s.status.as_u16()).collect();
    assert_eq!(statuses, [204, 500, 409, 204, 409, 409]);

    fake.put("t", json!("x"), Some(Duration::from_secs(60)));
    fake.expire("t");
    assert_eq!(client.get_state("s", "t").await.unwrap(), None);
    assert!(!fake.state().contains_key("t"));
}

#[tokio::test]
async fn deletes_check_if_match_and_bulk_reads_report_each_key() {
    let (fake, client) = started().await;
    fake.put("k", json!(1), None);
    let etag = fake.state()["k"].etag.clone();

    let err = client
        .delete_state("s", "k", Some("other"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EtagMismatch(_)), "{err:?}");
    let items = client.get_bulk_state("s", &["k", "gone"]).await.unwrap();
    assert_eq!(items[0].data, Some(json!(1)));
    assert_eq!(items[0].etag.as_deref(), Some(etag.as_str()));
    assert_eq!(items[1].data, None);

    client.delete_state("s", "k", Some(&etag)).await.unwrap();
    assert_eq!(fake.get("k"), None);
    assert_eq!(
        fake.deletes(),
        [
            ("k".to_owned(), Some("other".to_owned())),
            ("k".to_owned(), Some(etag))
        ]
    );
}

#[tokio::test]
async fn state_failures_and_concurrent_writers() {
    let (fake, client) = started().await;
    fake.set_state_down(true);
    assert!(client.get_state("s", "k").await.unwrap_err().is_transient());
    fake.set_state_down(false);

    fake.fail_next_saves(1, |item| item["key"] == "k");
    let item = [SaveItem::new("k", json!(1))];
    assert!(
        client
            .save_state("s", &item)
            .await
            .unwrap_err()
            .is_transient()
    );
    client
        .save_state("s", &[SaveItem::new("other", json!(1))])
        .await
        .unwrap();
    client.save_state("s", &item).await.unwrap();

    // Another writer gets there first: the first-write is refused, the winner's value stays.
    fake.write_before_next_save("w", json!("theirs"));
    let ours = [SaveItem::new("w", json!("ours")).first_write()];
    assert!(client.save_state("s", &ours).await.is_err());
    assert_eq!(fake.get("w"), Some(json!("theirs")));

    fake.write_after_next_job_call("j", json!("later"));
    client.delete_job("any").await.unwrap();
    assert_eq!(fake.get("j"), Some(json!("later")));
}

#[tokio::test]
async fn jobs_are_kept_read_back_as_daprd_does_and_deleted() {
    let (fake, client) = started().await;
    assert_eq!(client.get_job("none").await.unwrap(), None);
    let job = Job::once_after(Duration::from_secs(5), json!({"task": 1}));
    client.schedule_job("r-1", &job).await.unwrap();
    let read = client.get_job("r-1").await.unwrap().unwrap();
    assert_eq!(read.data, json!({"task": 1}));
    assert_eq!(fake.jobs()["r-1"]["dueTime"], "5s");

    client.delete_job("r-1").await.unwrap();
    assert!(fake.jobs().is_empty());
    let scheduled = serde_json::to_value(&job).unwrap();
    assert_eq!(
        fake.job_calls(),
        [
            JobCall::Schedule("r-1".to_owned(), scheduled),
            JobCall::Delete("r-1".to_owned())
        ]
    );
    client.schedule_job("r-2", &job).await.unwrap();
    fake.clear_jobs();
    assert_eq!(client.get_job("r-2").await.unwrap(), None);
}

#[tokio::test]
async fn publishes_are_recorded_and_can_fail() {
    let (fake, client) = started().await;
    fake.fail_next_publishes(1);
    let options = PublishOptions::default();
    let err = client
        .publish_json("ps", "a/b", &json!({"n": 1}), &options)
        .await;
    assert!(err.unwrap_err().is_transient());
    client
        .publish_json("ps", "a/b", &json!({"n": 1}), &options)
        .await
        .unwrap();

    let publishes = fake.publishes();
    assert_eq!(publishes.len(), 2);
    assert!(!publishes[0].accepted && publishes[1].accepted);
    assert_eq!(publishes[1].pubsub, "ps");
    assert_eq!(publishes[1].topic, "a/b");
    assert_eq!(
        publishes[1].content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(publishes[1].event, json!({"n": 1}));
}

#[tokio::test]
async fn secrets_and_a_missing_one() {
    let (fake, client) = started().await;
    fake.add_secret("db", &[("url", "postgres://x")]);
    assert_eq!(
        client.get_secret("any", "db").await.unwrap()["url"],
        "postgres://x"
    );
    assert_eq!(
        client.get_bulk_secrets("any").await.unwrap()["db"]["url"],
        "postgres://x"
    );
    let err = client.get_secret("any", "nope").await.unwrap_err();
    assert_eq!(err.error_code(), Some("ERR_SECRET_GET"));
    assert!(!err.is_transient());
}

#[tokio::test]
async fn invocations_go_to_the_handler_and_are_recorded() {
    let (fake, client) = started().await;
    let err = client
        .invoke_json::<Value>("backend", Method::GET, "x", None, &[])
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some("ERR_DIRECT_INVOKE"));

    fake.on_invoke(|call| Answer::json(StatusCode::OK, &json!({"path": call.path})));
    let answer: Value = client
        .invoke_json("backend", Method::POST, "tasks/a%20b", Some(&json!(1)), &[])
        .await
        .unwrap();
    assert_eq!(answer, json!({"path": "tasks/a%20b"}));

    let calls = fake.invocations();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].app_id, "backend");
    assert_eq!(calls[1].request.method, Method::POST);
    assert_eq!(calls[1].request.json(), json!(1));
}

#[tokio::test]
async fn probes_metadata_and_unknown_routes() {
    let (fake, client) = started().await;
    client.wait_ready(Duration::from_secs(5)).await.unwrap();
    client.healthz().await.unwrap();
    assert_eq!(client.metadata().await.unwrap()["id"], "fake-sidecar");
    let err = client.shutdown().await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(err.error_code(), Some("ERR_FAKE_UNKNOWN_ROUTE"));
    assert_eq!(fake.requests().len(), 4);
}
