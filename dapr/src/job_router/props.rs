//! Property tests of the job trigger route (issue 12, generated bad input): whatever name and
//! body a trigger carries, [`JobRouter`] answers a JSON 400 (data that is no JSON), a JSON 404
//! (no handler) or the handler's outcome — never a panic, never a 5xx the handler did not ask
//! for — and a JSON body reaches the handler as sent.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::ServiceExt;

use super::*;

/// A router whose one handler (prefix `reminder-`) records what it got and succeeds.
fn router(seen: &Arc<Mutex<Vec<JobTrigger>>>) -> Router {
    let seen = Arc::clone(seen);
    JobRouter::new()
        .on_prefix("reminder-", move |trigger| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push(trigger);
                Ok(())
            }
        })
        .into_router()
}

/// Percent-encodes every byte outside the unreserved set, so any name is a valid path.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_trigger_is_answered_json_200_400_or_404(
        name in prop_oneof![
            "reminder-[ -~]{0,20}",
            any::<String>().prop_filter("a path segment", |n| !n.is_empty()),
        ],
        body in prop_oneof![
            json_value().prop_map(|v| v.to_string().into_bytes()),
            prop::collection::vec(any::<u8>(), 0..64),
        ],
    ) {
        let seen = Arc::default();
        let request = Request::post(format!("/job/{}", encode(&name)))
            .body(Body::from(body.clone()))
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (status, answer) = runtime.block_on(async {
            let response = router(&seen).oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, bytes)
        });
        let handled = std::mem::take(&mut *seen.lock().unwrap());
        let data = if body.iter().all(u8::is_ascii_whitespace) {
            Some(Value::Null)
        } else {
            serde_json::from_slice::<Value>(&body).ok()
        };
        match (data, name.starts_with("reminder-")) {
            (None, _) => {
                prop_assert_eq!(status, StatusCode::OK);
                prop_assert!(String::from_utf8_lossy(&answer).contains("INVALID_JOB_DATA"));
                prop_assert!(handled.is_empty());
            }
            (Some(_), false) => {
                prop_assert_eq!(status, StatusCode::NOT_FOUND);
                prop_assert!(handled.is_empty());
            }
            (Some(data), true) => {
                prop_assert_eq!(status, StatusCode::OK);
                prop_assert_eq!(handled, vec![JobTrigger { name, data }]);
            }
        }
        if status != StatusCode::OK {
            let answer: Value = serde_json::from_slice(&answer).unwrap();
            prop_assert!(answer["code"].is_string(), "{}", answer);
        }
    }
}
